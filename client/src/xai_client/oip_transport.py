"""The Open Inference Protocol (v2) transports of ``Client(protocol="v2")`` (the kserve engine).

``address`` ``http://HOST:PORT`` (or ``https://``) speaks REST, ``HOST:PORT`` gRPC
(``inference.GRPCInferenceService``). Both send the ``ExplainRequest`` in its v2 form
(:mod:`xai_client.oip`) with binary tensors (REST: the binary-data extension; gRPC:
``raw_input_contents``) and turn the answer back into an ``ExplainResponse``; a failed request raises
the typed error of its HTTP status or gRPC code. The model list and the model's description (methods,
credentials) come from REST (``management_address``, ``http://HOST:PORT`` or ``HOST:PORT``; for gRPC by
default the port below the gRPC port, KServe's 8080/8081 pair).

The gRPC stubs are imported on first use: they define the protobuf package ``inference`` like
tritonclient's, which cannot share a process with them.
"""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from typing import Any

from xai_client import oip
from xai_client.api.v1 import explain_pb2 as pb
from xai_client.errors import (
    DeadlineExceeded,
    Internal,
    InvalidArgument,
    NotFound,
    ResourceExhausted,
    Unauthenticated,
    Unavailable,
    XaiClientError,
    error_for_code,
)

_BY_STATUS: dict[int, type[XaiClientError]] = {
    400: InvalidArgument,
    401: Unauthenticated,
    403: Unauthenticated,
    404: NotFound,
    413: ResourceExhausted,
    503: Unavailable,
    504: DeadlineExceeded,
}
_MAX_MESSAGE = 64 * 1024 * 1024


def v2_transport(address: str, management_address: str | None, token: str | None, _mtoken: str | None) -> Any:
    """The REST or gRPC v2 transport for ``address`` (see the module doc)."""
    if "://" in address:
        return V2HttpTransport(address, token)
    rest = rest_url(management_address) if management_address else rest_address_of(address)
    return V2GrpcTransport(address, rest, token)


def rest_url(address: str) -> str:
    """A REST address as the URL the v2 client takes: ``HOST:PORT`` -> ``http://HOST:PORT``."""
    return address if "://" in address else f"http://{address}"


def rest_address_of(grpc_address: str) -> str:
    host, _, port = grpc_address.rpartition(":")
    return f"http://{host or '127.0.0.1'}:{int(port) - 1}"


class _Rest:
    """REST calls: JSON metadata and descriptions, binary-data inference."""

    def __init__(self, base: str, token: str | None) -> None:
        self._base = base.rstrip("/")
        self._token = token

    def request(
        self, path: str, *, timeout: float, body: bytes | None = None, headers: dict[str, str] | None = None
    ) -> tuple[int, bytes, Any]:
        hdrs = dict(headers or {})
        if self._token:
            hdrs["Authorization"] = f"Bearer {self._token}"
        url = self._base + path
        req = urllib.request.Request(
            url, data=body, headers=hdrs, method="POST" if body is not None else "GET"
        )
        try:
            with urllib.request.urlopen(req, timeout=timeout) as resp:
                return resp.status, resp.read(), resp.headers
        except urllib.error.HTTPError as exc:
            return exc.code, exc.read(), exc.headers
        except TimeoutError as exc:
            raise DeadlineExceeded(f"{url}: no answer within {timeout} s") from exc
        except (urllib.error.URLError, ConnectionError) as exc:
            reason = getattr(exc, "reason", exc)
            if isinstance(reason, TimeoutError):
                raise DeadlineExceeded(f"{url}: no answer within {timeout} s") from exc
            raise Unavailable(f"{url}: {reason}") from exc

    def json(self, path: str, *, timeout: float) -> Any:
        status, data, _ = self.request(path, timeout=timeout)
        if status != 200:
            raise _http_error(status, data)
        return json.loads(data)

    def ping(self, *, timeout: float) -> str:
        return "Healthy" if self.json("/v2/health/ready", timeout=timeout).get("ready") else "Unhealthy"

    def list_models(self, *, timeout: float) -> list[dict]:
        return [{"modelName": m} for m in self.json("/v2/models", timeout=timeout).get("models", [])]

    def describe_model(self, name: str, *, timeout: float, customized: bool = False) -> list[dict]:
        if customized:
            return [
                {
                    "modelName": name,
                    "customizedMetadata": self.json(f"/v2/models/{name}/describe", timeout=timeout),
                }
            ]
        status, data, _ = self.request(f"/v2/models/{name}/ready", timeout=timeout)
        if status == 404:
            raise _http_error(status, data)
        ready = status == 200
        return [
            {
                "modelName": name,
                "modelVersion": "",
                "workers": [{"status": "READY" if ready else "NOT_READY"}],
            }
        ]


def _http_error(status: int, data: bytes) -> XaiClientError:
    text = data.decode("utf-8", "replace")
    try:
        message = str(json.loads(text).get("error", text))
    except (ValueError, AttributeError):
        message = text
    return _BY_STATUS.get(status, Internal)(f"HTTP {status}: {message}")


class V2HttpTransport(_Rest):
    def __init__(self, address: str, token: str | None) -> None:
        super().__init__(address, token)

    def call(
        self, model: str, request: pb.ExplainRequest, *, timeout: float, explain: bool
    ) -> pb.ExplainResponse:
        inputs, params = oip.request_to_v2(request)
        raws = [b"" if t.datatype == "BYTES" else oip.to_raw(t) for t in inputs]
        header = {
            "id": request.request_id,
            "parameters": {**params, "binary_data_output": True},
            "inputs": [_input_header(t, r) for t, r in zip(inputs, raws, strict=True)],
        }
        head = json.dumps(header).encode("utf-8")
        status, data, headers = self.request(
            f"/v2/models/{model}/infer",
            timeout=timeout,
            body=head + b"".join(raws),
            headers={
                "Inference-Header-Content-Length": str(len(head)),
                "Content-Type": "application/octet-stream",
            },
        )
        if status != 200:
            raise _http_error(status, data)
        json_len = int(headers.get("Inference-Header-Content-Length") or len(data))
        answer = json.loads(data[:json_len])
        pos, outputs = json_len, []
        for o in answer.get("outputs", []):
            size = (o.get("parameters") or {}).get("binary_data_size")
            if size is not None:
                raw = data[pos : pos + int(size)]
                pos += int(size)
                outputs.append(oip.from_raw(o["name"], o["datatype"], o["shape"], raw, o.get("parameters")))
            else:
                arr = _json_array(o["data"], o["datatype"], o["shape"])
                outputs.append(
                    oip.V2Tensor(o["name"], o["datatype"], list(o["shape"]), arr, o.get("parameters") or {})
                )
        return oip.responses_from_v2(
            outputs, answer.get("parameters") or {}, model=model, request_id=request.request_id
        )[0]

    def close(self) -> None:
        pass


def _input_header(t: oip.V2Tensor, raw: bytes) -> dict[str, Any]:
    """A REST input's JSON: encoded images (``BYTES``) inline as base64 text, the rest as binary data."""
    head: dict[str, Any] = {"name": t.name, "shape": t.shape, "datatype": t.datatype}
    if t.datatype == "BYTES":
        return head | {"data": oip.to_base64(t), "parameters": {oip.CONTENT_TYPE: oip.BASE64}}
    return head | {"parameters": {"binary_data_size": len(raw)}}


def _json_array(data: list, datatype: str, shape: list[int]) -> Any:
    import numpy as np

    if datatype == "BYTES":
        flat = np.empty(len(data), dtype=object)
        flat[:] = [d.encode("utf-8") if isinstance(d, str) else d for d in data]
        return flat.reshape(shape)
    return np.asarray(data, dtype=oip.datatype_of(datatype)).reshape(shape)


class V2GrpcTransport:
    def __init__(self, address: str, rest_address: str, token: str | None) -> None:
        import grpc

        from xai_client.api.oip import grpc_predict_v2_pb2 as v2
        from xai_client.api.oip import grpc_predict_v2_pb2_grpc as v2_grpc

        self._v2 = v2
        opts = [
            ("grpc.max_receive_message_length", _MAX_MESSAGE),
            ("grpc.max_send_message_length", _MAX_MESSAGE),
        ]
        self._channel = grpc.insecure_channel(address, options=opts)
        self._stub = v2_grpc.GRPCInferenceServiceStub(self._channel)
        self._meta = [("authorization", f"Bearer {token}")] if token else []
        self._rest = _Rest(rest_address, token)

    def _error(self, exc: Any) -> XaiClientError:
        import grpc

        code = exc.code() if hasattr(exc, "code") else None
        details = exc.details() if hasattr(exc, "details") else str(exc)
        if code == grpc.StatusCode.DEADLINE_EXCEEDED:
            return DeadlineExceeded(details or "deadline exceeded")
        name = code.name if code is not None else "INTERNAL"
        return error_for_code(name, details or name)

    def call(
        self, model: str, request: pb.ExplainRequest, *, timeout: float, explain: bool
    ) -> pb.ExplainResponse:
        import grpc

        v2 = self._v2
        inputs, params = oip.request_to_v2(request)
        msg = v2.ModelInferRequest(model_name=model, id=request.request_id)
        for key, value in params.items():
            p = msg.parameters[key]
            if isinstance(value, bool):
                p.bool_param = value
            elif isinstance(value, int):
                p.int64_param = value
            else:
                p.string_param = str(value)
        for t in inputs:
            msg.inputs.add(name=t.name, datatype=t.datatype, shape=t.shape)
            msg.raw_input_contents.append(oip.to_raw(t))
        try:
            resp = self._stub.ModelInfer(msg, timeout=timeout, metadata=self._meta)
        except grpc.RpcError as exc:
            raise self._error(exc) from None
        outputs = []
        for i, o in enumerate(resp.outputs):
            params_o = {
                k: getattr(v, v.WhichOneof("parameter_choice"))
                for k, v in o.parameters.items()
                if v.WhichOneof("parameter_choice")
            }
            if resp.raw_output_contents:
                outputs.append(
                    oip.from_raw(o.name, o.datatype, list(o.shape), resp.raw_output_contents[i], params_o)
                )
            else:
                outputs.append(oip.V2Tensor(o.name, o.datatype, list(o.shape), _contents(o), params_o))
        rparams = {
            k: getattr(v, v.WhichOneof("parameter_choice"))
            for k, v in resp.parameters.items()
            if v.WhichOneof("parameter_choice")
        }
        return oip.responses_from_v2(outputs, rparams, model=model, request_id=request.request_id)[0]

    def ping(self, *, timeout: float) -> str:
        import grpc

        try:
            ready = self._stub.ServerReady(self._v2.ServerReadyRequest(), timeout=timeout).ready
        except grpc.RpcError as exc:
            raise self._error(exc) from None
        return "Healthy" if ready else "Unhealthy"

    def list_models(self, *, timeout: float) -> list[dict]:
        return self._rest.list_models(timeout=timeout)

    def describe_model(self, name: str, *, timeout: float, customized: bool = False) -> list[dict]:
        return self._rest.describe_model(name, timeout=timeout, customized=customized)

    def close(self) -> None:
        self._channel.close()


def _contents(o: Any) -> Any:
    import numpy as np

    field = {
        "FP32": "fp32_contents",
        "FP64": "fp64_contents",
        "INT64": "int64_contents",
        "INT32": "int_contents",
        "UINT8": "uint_contents",
        "BOOL": "bool_contents",
        "BYTES": "bytes_contents",
    }[o.datatype]
    values = list(getattr(o.contents, field))
    if o.datatype == "BYTES":
        arr = np.empty(len(values), dtype=object)
        arr[:] = values
        return arr.reshape(list(o.shape))
    return np.asarray(values, dtype=oip.datatype_of(o.datatype)).reshape(list(o.shape))
