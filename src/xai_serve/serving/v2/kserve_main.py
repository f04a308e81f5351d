"""The process of the kserve engine: KServe's Python model server with xai-serve's models.

``python -m xai_serve.serving.v2.kserve_main --state-dir D --model NAME=ARCHIVE ... --host H
--http-port P --grpc-port Q [--no-auth]`` (``xai serve --engine kserve`` starts it; see
:mod:`xai_serve.serving.v2.kserve_engine`). It serves the Open Inference Protocol: REST
``/v2/health/live|ready``, ``/v2/models/{name}[/ready]``, ``/v2/models/{name}/infer`` (and
``/v2/models/{name}/describe``: the model's methods with their parameters, the client's ``describe``),
gRPC ``inference.GRPCInferenceService``, Prometheus metrics on ``/metrics``.

What KServe does not do and this module adds (tested in tests/integration/test_oip_kserve.py):

* binding: KServe's REST server binds 0.0.0.0 and its gRPC server ``[::]``; both are bound to ``--host``;
* authentication: the ``inference`` key of ``D/key_file.json`` is the bearer token (checked by the model
  for REST and gRPC inference and by the describe route); health, readiness, metadata and metrics stay
  open (probes and scrapers carry no token);
* a BYTES input sent as binary data over REST stays bytes (KServe decodes it as UTF-8 text);
* a JSON body without a Content-Type (tritonclient's HTTP client sends none) or with curl's form type
  is read as JSON;
* errors: :class:`~xai_serve.serving.v2.kserve_model.V2Error` answers REST with its HTTP status and
  ``{"error": ...}`` (gRPC: KServe's interceptor aborts with its status code).

KServe reads its argument defaults from ``sys.argv`` when imported, so ``main`` parses its own
arguments first and imports KServe with a clean ``sys.argv``.
"""

from __future__ import annotations

import argparse
import functools
import json
import logging
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

from fastapi import Request  # FastAPI resolves the route annotations from this module's names
from fastapi.responses import JSONResponse

log = logging.getLogger("xai_serve.kserve")


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--state-dir", type=Path, required=True)
    p.add_argument("--model", action="append", default=[], help="NAME=PATH (a .mar or a checkpoint dir)")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--http-port", type=int, default=8080)
    p.add_argument("--grpc-port", type=int, default=8081)
    p.add_argument("--no-auth", action="store_true")
    p.add_argument("--max-batch-rows", type=int, default=16)
    p.add_argument("--max-batch-delay-ms", type=float, default=0.0)
    return p


def load_model(name: str, path: Path, work: Path) -> tuple[Any, list[str]]:
    """The service of archive (or checkpoint directory) ``path`` and its default methods."""
    from xai_serve.serving.archive import build_archive
    from xai_serve.serving.served import build_service, open_archive
    from xai_serve.serving.v2.prometheus import PrometheusObserver

    if path.is_dir():  # a checkpoint directory: archived first, as `xai archive` would
        path = build_archive(path, name, store=work / "archives")
    unpacked = open_archive(path, Path(tempfile.mkdtemp(prefix=f"{name}-", dir=work)))
    return build_service(
        name, unpacked.model_dir, unpacked.serialized_file, unpacked.xai_config, PrometheusObserver(name)
    )


def _bind(host: str) -> None:
    """Make KServe's REST and gRPC servers listen on ``host`` instead of every interface."""
    import kserve.model_server as ms
    import kserve.protocol.grpc.server as grpc_server
    from grpc import aio

    class _RESTServer(ms.RESTServer):
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, **kwargs)
            self.config.host = host

    ms.RESTServer = _RESTServer

    class _Aio:  # grpc.aio with add_insecure_port("[::]:P") listening on host:P
        def __getattr__(self, name: str) -> Any:
            return getattr(aio, name)

        @staticmethod
        def server(*args: Any, **kwargs: Any) -> Any:
            server = aio.server(*args, **kwargs)
            add = server.add_insecure_port
            server.add_insecure_port = lambda address: add(address.replace("[::]", host))
            return server

    grpc_server.aio = _Aio()


def _keep_binary_bytes() -> None:
    """Let a BYTES input sent as binary data over REST (an encoded PNG/JPEG after the JSON header, as
    xai_client and tritonclient send it) reach the model as bytes. KServe's REST decoder re-sets every
    binary input as JSON data (``set_data_from_numpy(binary_data=False)``), which decodes each BYTES
    element as UTF-8: an image failed with HTTP 500. Such an input keeps its raw data instead
    (``as_numpy`` decodes it)."""
    from kserve import InferInput

    set_data = InferInput.set_data_from_numpy

    def _set_data(self: Any, input_tensor: Any, binary_data: bool = True) -> None:
        if not binary_data and self.datatype == "BYTES" and self._raw_data is not None:
            return
        set_data(self, input_tensor, binary_data)

    InferInput.set_data_from_numpy = _set_data


def _routes(models: dict[str, Any], describe: dict[str, Callable[[], dict]]) -> None:
    """The JSON-without-Content-Type fix, the v2 error handler and the describe route on KServe's app."""
    from kserve.model_server import app

    from xai_serve.serving.v2.kserve_model import V2Error

    @app.middleware("http")
    async def _json_by_default(request: Request, call_next: Any) -> Any:
        """A POST without binary data and without a JSON content type (tritonclient's HTTP client sends
        none, ``curl -d`` sends a form type) is read as JSON."""
        headers = request.scope["headers"]
        names = {k.lower(): v for k, v in headers}
        form = names.get(b"content-type", b"").startswith(b"application/x-www-form-urlencoded")
        binary = b"inference-header-content-length" in names
        if request.method == "POST" and not binary and (b"content-type" not in names or form):
            headers[:] = [(k, v) for k, v in headers if k.lower() != b"content-type"]
            headers.append((b"content-type", b"application/json"))
        return await call_next(request)

    @app.exception_handler(V2Error)
    async def _v2_error(_request: Request, exc: V2Error) -> JSONResponse:
        return JSONResponse(status_code=exc.http_status, content={"error": exc.details})

    @app.get("/v2/models/{name}/describe")
    async def _describe(name: str, request: Request) -> JSONResponse:
        if name not in models:
            return JSONResponse(status_code=404, content={"error": f"Model with name {name} does not exist."})
        try:
            models[name].check_token(dict(request.headers))
        except V2Error as exc:
            return JSONResponse(status_code=exc.http_status, content={"error": exc.details})
        return JSONResponse(content=describe[name]())


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    sys.argv = sys.argv[:1]  # KServe parses sys.argv on import
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    from kserve import ModelServer
    from prometheus_client import REGISTRY

    from xai_serve.serving.live_metrics import LiveCollector
    from xai_serve.serving.served import describe_service
    from xai_serve.serving.v2.kserve_engine import read_inference_token
    from xai_serve.serving.v2.kserve_model import XaiKServeModel

    token = None if args.no_auth else read_inference_token(args.state_dir)
    work = args.state_dir / "tmp"
    work.mkdir(parents=True, exist_ok=True)
    models: dict[str, XaiKServeModel] = {}
    describe: dict[str, Callable[[], dict]] = {}
    services: list[Any] = []
    # the live credentials' xai_live_* series on KServe's /metrics, from the monitors' snapshots
    REGISTRY.register(LiveCollector(lambda: [s.monitor for s in services if s.monitor is not None]))
    for spec in args.model:
        name, _, path = spec.partition("=")
        service, defaults = load_model(name, Path(path), work)
        models[name] = XaiKServeModel(
            name,
            service,
            token=token,
            default_methods=defaults,
            max_batch_rows=args.max_batch_rows,
            max_batch_delay_s=args.max_batch_delay_ms / 1e3,
        )
        services.append(service)
        describe[name] = functools.partial(describe_service, service, defaults)
        log.info("model %s ready: %s", name, json.dumps(sorted(service.methods)))
    _bind(args.host)
    _keep_binary_bytes()
    _routes(models, describe)
    ModelServer(http_port=args.http_port, grpc_port=args.grpc_port, workers=1).start(list(models.values()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
