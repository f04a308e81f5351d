"""Drives a v2 server with one client nobody on this project wrote, in a process of its own
(``kserve`` and ``tritonclient.grpc`` define the same protobuf symbols and cannot share one).

``python oip_clients.py CLIENT ADDRESS MODEL TOKEN`` with CLIENT one of ``triton-http``,
``triton-grpc``, ``kserve-rest``, ``kserve-grpc``; prints one JSON object: the answers to a prediction
and an explanation of a fixed input (tritonclient: also of it as a PNG, BYTES), and what each bad
request got (status or code, message), then whether the server still answers.
"""

from __future__ import annotations

import asyncio
import base64
import json
import sys
from typing import Any

import numpy as np

IMAGE = np.random.default_rng(0).random((1, 1, 28, 28)).astype(np.float32)
EXPLAIN = {"xai_methods": "gradient,lrp", "xai_target": "3"}


def png() -> bytes:
    """IMAGE as an 8-bit greyscale PNG (the BYTES input: tritonclient sends it as binary data)."""
    import io

    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray((IMAGE[0, 0] * 255).round().astype(np.uint8)).save(buf, format="PNG")
    return buf.getvalue()


# (name, input array, parameters): each must be refused with the protocol's error
BAD: list[tuple[str, np.ndarray, dict[str, Any]]] = [
    ("shape", IMAGE[:, :, :20], {}),
    ("dtype", IMAGE.astype(np.float64), {}),
    ("method", IMAGE, {"xai_methods": "nope"}),
    ("parameter", IMAGE, {"xai_methods": "gradient", "xai_param.gradient.nope": "1"}),
    ("cost", IMAGE, {"xai_methods": "gradient", "xai_target": "top5"}),
]


def _params(p: Any) -> dict[str, Any]:
    """Output parameters as plain values (gRPC clients give InferParameter messages)."""
    out = {}
    for k, v in (p or {}).items():
        which = getattr(v, "WhichOneof", None)
        out[k] = getattr(v, which("parameter_choice")) if which else v
    return out


def triton(kind: str, address: str, model: str, token: str) -> dict[str, Any]:
    if kind == "triton-http":
        import tritonclient.http as t

        client = t.InferenceServerClient(url=address)
        auth = {"Authorization": f"Bearer {token}"}
    else:
        import tritonclient.grpc as t  # type: ignore[no-redef]

        client = t.InferenceServerClient(url=address)
        auth = {"authorization": f"Bearer {token}"}

    def infer(x: np.ndarray, params: dict, headers: dict | None) -> Any:
        inp = t.InferInput("input", list(x.shape), "FP64" if x.dtype == np.float64 else "FP32")
        inp.set_data_from_numpy(x)
        return client.infer(model, [inp], parameters=params, headers=headers)

    result: dict[str, Any] = {"live": client.is_server_live(), "ready": client.is_model_ready(model)}
    r = infer(IMAGE, {}, auth)
    result["probabilities"] = r.as_numpy("probabilities").tolist()
    r = infer(IMAGE, EXPLAIN, auth)
    result["heatmap_gradient"] = r.as_numpy("heatmap_gradient").tolist()
    result["heatmap_lrp"] = r.as_numpy("heatmap_lrp").tolist()
    out = r.get_output("heatmap_lrp")
    result["lrp_parameters"] = _params(out["parameters"] if isinstance(out, dict) else out.parameters)
    encoded = t.InferInput("input", [1], "BYTES")
    encoded.set_data_from_numpy(np.array([png()], dtype=object))
    params = {"xai_methods": "gradient", "xai_target": "3"}
    r = client.infer(model, [encoded], parameters=params, headers=auth)
    result["png"] = base64.b64encode(png()).decode()  # what was sent, for the in-process reference
    result["png_heatmap_gradient"] = r.as_numpy("heatmap_gradient").tolist()
    errors = {}
    for name, x, params in [*BAD, ("token", IMAGE, {})]:
        try:
            infer(x, params, None if name == "token" else auth)
            errors[name] = ["no error", ""]
        except t.InferenceServerException as exc:
            errors[name] = [str(exc.status()), exc.message()]
    result["errors"] = errors
    result["alive_after"] = client.is_server_ready()
    return result


async def kserve_client(kind: str, address: str, model: str, token: str) -> dict[str, Any]:
    from kserve import InferenceGRPCClient, InferenceRESTClient, InferInput, InferRequest, RESTConfig

    if kind == "kserve-rest":
        rest = InferenceRESTClient(RESTConfig(protocol="v2", timeout=60, retries=0))
        auth: Any = {"Authorization": f"Bearer {token}"}

        async def infer(req: Any, headers: Any) -> Any:
            return await rest.infer(f"http://{address}", req, model_name=model, headers=headers)

        async def ready() -> bool:
            return bool(await rest.is_server_ready(f"http://{address}"))
    else:
        grpc_client = InferenceGRPCClient(url=address, timeout=60, retries=2)
        auth = (("authorization", f"Bearer {token}"),)

        async def infer(req: Any, headers: Any) -> Any:
            return await grpc_client.infer(req, headers=headers)

        async def ready() -> bool:
            return bool(await grpc_client.is_server_ready())

    def request(x: np.ndarray, params: dict) -> Any:
        inp = InferInput("input", list(x.shape), "FP64" if x.dtype == np.float64 else "FP32")
        inp.set_data_from_numpy(x, binary_data=False)
        return InferRequest(model_name=model, infer_inputs=[inp], parameters=params or None)

    result: dict[str, Any] = {"ready": await ready()}
    outs = {o.name: o for o in (await infer(request(IMAGE, {}), auth)).outputs}
    result["probabilities"] = outs["probabilities"].as_numpy().tolist()
    outs = {o.name: o for o in (await infer(request(IMAGE, EXPLAIN), auth)).outputs}
    result["heatmap_gradient"] = outs["heatmap_gradient"].as_numpy().tolist()
    result["heatmap_lrp"] = outs["heatmap_lrp"].as_numpy().tolist()
    result["lrp_parameters"] = _params(outs["heatmap_lrp"].parameters)
    errors = {}
    for name, x, params in [*BAD, ("token", IMAGE, {})]:
        try:
            await infer(request(x, params), None if name == "token" else auth)
            errors[name] = ["no error", ""]
        except Exception as exc:  # httpx.HTTPStatusError (REST) or grpc.aio.AioRpcError (gRPC)
            response = getattr(exc, "response", None)
            if response is not None:
                errors[name] = [str(response.status_code), response.text]
            else:
                errors[name] = [str(exc.code()), exc.details()]  # type: ignore[attr-defined]
    result["errors"] = errors
    result["alive_after"] = await ready()
    return result


def main(argv: list[str]) -> int:
    kind, address, model, token = argv
    if kind.startswith("triton"):
        result = triton(kind, address, model, token)
    else:
        result = asyncio.run(kserve_client(kind, address, model, token))
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
