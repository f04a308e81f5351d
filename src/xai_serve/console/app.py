"""The console's ASGI app (FastAPI on Starlette; uvicorn runs it): the page, its static assets and the JSON
API under ``/api/`` that the page itself uses.

* ``GET /api/health``: ``{"up": bool, "status": ..., "message": ...}`` (the page's banner).
* ``GET /api/models``: every served model with its status, workers, card, methods and credentials.
* ``GET /api/models/{name}/methods``: the method specs ``Client.methods`` returns (type, default, choices,
  bounds, doc per parameter).
* ``GET /api/samples``: the built-in sample images per dataset.
* ``POST /api/explain`` (multipart): ``image`` (the file), ``model``, ``methods`` (comma-separated),
  ``target`` (the client's target grammar; empty: predicted), ``param`` (repeatable ``method.key=value``);
  answers the prediction and per heatmap a PNG overlay ``data:`` URL, the ``.npy`` values, the layer, the
  credential, the evidence, the server's timings and the ``xai-client`` command line reproducing it.

Errors are JSON ``{"error": {"code", "message"}}`` with a 4xx/5xx status, never a stack trace; POSTs from
another site get 403 (:mod:`xai_serve.console.guard`)."""

from __future__ import annotations

import logging
from importlib import resources
from typing import Any

from fastapi import FastAPI, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, JSONResponse
from fastapi.staticfiles import StaticFiles
from starlette.datastructures import UploadFile
from starlette.exceptions import HTTPException
from xai_client.errors import InvalidArgument, XaiClientError
from xai_client.params import parse_param_items
from xai_client.targets import TargetSyntaxError, parse_target

from xai_serve.console.backend import Backend
from xai_serve.console.guard import SameOriginGuard
from xai_serve.console.upload import MAX_UPLOAD_BYTES, UploadTooLarge, decode_upload

log = logging.getLogger(__name__)

STATIC = resources.files("xai_serve.console") / "static"
# a client error's code -> the console's HTTP status (the model server's state shows as 502/503/504)
HTTP_STATUS = {
    "INVALID_ARGUMENT": 400,
    "NOT_FOUND": 404,
    "FAILED_PRECONDITION": 409,
    "RESOURCE_EXHAUSTED": 429,
    "UNAUTHENTICATED": 502,
    "UNAVAILABLE": 503,
    "DEADLINE_EXCEEDED": 504,
    "INTERNAL": 502,
}
FORM_OVERHEAD = 64 * 1024  # multipart boundaries and the small fields around the image


def _error(status: int, code: str, message: str) -> JSONResponse:
    return JSONResponse({"error": {"code": code, "message": message}}, status_code=status)


def _samples() -> dict[str, list[dict[str, str]]]:
    root = STATIC / "samples"
    out: dict[str, list[dict[str, str]]] = {}
    for folder in sorted(root.iterdir(), key=lambda p: p.name):
        if folder.is_dir():
            out[folder.name] = [
                {"name": f.name.rsplit(".", 1)[0], "url": f"/static/samples/{folder.name}/{f.name}"}
                for f in sorted(folder.iterdir(), key=lambda p: p.name)
                if f.name.endswith(".png")
            ]
    return out


def create_app(backend: Backend, *, max_upload: int = MAX_UPLOAD_BYTES) -> FastAPI:
    """The console for ``backend``; uploads over ``max_upload`` bytes get 413."""
    app = FastAPI(title="xai-serve console", docs_url=None, redoc_url=None, openapi_url="/api/openapi.json")
    app.add_middleware(SameOriginGuard)
    app.mount("/static", StaticFiles(directory=str(STATIC)), name="static")
    samples = _samples()

    @app.exception_handler(XaiClientError)
    async def client_error(_request: Request, exc: XaiClientError) -> JSONResponse:
        status = 413 if isinstance(exc, UploadTooLarge) else HTTP_STATUS.get(exc.code, 502)
        return _error(status, exc.code, exc.message)

    @app.exception_handler(RequestValidationError)
    async def form_error(_request: Request, exc: RequestValidationError) -> JSONResponse:
        fields = sorted({str(e.get("loc", ["", "?"])[-1]) for e in exc.errors()})
        return _error(400, "INVALID_ARGUMENT", f"missing or invalid form fields: {', '.join(fields)}")

    @app.exception_handler(Exception)
    async def unexpected(_request: Request, exc: Exception) -> JSONResponse:
        log.exception("console request failed")
        return _error(500, "INTERNAL", f"the console failed: {type(exc).__name__}")

    @app.get("/", include_in_schema=False)
    def index() -> FileResponse:
        return FileResponse(str(STATIC / "index.html"), media_type="text/html")

    @app.get("/api/health")
    def health() -> dict[str, Any]:
        return backend.health()

    @app.get("/api/models")
    def models() -> list[dict[str, Any]]:
        return backend.models()

    @app.get("/api/models/{name}/methods")
    def methods(name: str) -> dict[str, Any]:
        return backend.methods(name)

    @app.get("/api/samples")
    def sample_list() -> dict[str, list[dict[str, str]]]:
        return samples

    @app.post("/api/explain")
    async def explain(request: Request) -> JSONResponse:
        """Multipart fields ``image``, ``model``, ``methods``, ``target``, ``param`` (see the module doc).
        The form is read by hand: FastAPI's declared form parameters cost more than the rest of the
        console's own work per request."""
        length = int(request.headers.get("content-length") or 0)
        if length > max_upload + FORM_OVERHEAD:
            raise UploadTooLarge(f"the request has {length} bytes; the upload limit is {max_upload} bytes")
        try:
            form = await request.form(max_files=1, max_fields=64)
        except (HTTPException, AssertionError) as exc:  # not a multipart form (or a malformed one)
            raise InvalidArgument(f"expected a multipart form: {getattr(exc, 'detail', exc)}") from None
        image = form.get("image")
        missing = [k for k in ("image", "model", "methods") if not form.get(k)]
        if missing:
            raise InvalidArgument(f"missing or invalid form fields: {', '.join(missing)}")
        if not isinstance(image, UploadFile):
            raise InvalidArgument("the form field image must be a file")
        data = await image.read(max_upload + 1)
        fields = {k: form.get(k) for k in ("model", "methods", "target")}
        if not all(isinstance(v, str | None) for v in fields.values()):
            raise InvalidArgument("model, methods and target are text fields")
        params = [p for p in form.getlist("param") if isinstance(p, str)]
        answer = await run_in_threadpool(
            _explain, data, str(fields["model"]), str(fields["methods"]), str(fields["target"] or ""), params
        )
        # a ready JSONResponse: the answer is plain JSON already (no second walk through FastAPI's encoder)
        return JSONResponse(answer)

    def _explain(data: bytes, model: str, methods: str, target: str, param: list[str]) -> dict[str, Any]:
        pixels = decode_upload(data, limit=max_upload)
        names = [m.strip() for m in methods.split(",") if m.strip()]
        if not names:
            raise InvalidArgument("choose at least one method")
        params = parse_param_items(param)
        stray = sorted(set(params) - set(names))
        if stray:
            raise InvalidArgument(f"parameters for methods not requested: {', '.join(stray)}")
        try:
            parse_target(target.strip() or None)
        except TargetSyntaxError as exc:
            raise InvalidArgument(str(exc)) from None
        return backend.explain(model, data, pixels, names, params, target.strip() or None)

    return app
