"""The two transports: TorchServe's gRPC ``Predictions`` RPC and its REST API.

Both carry the same ``ExplainRequest``/``ExplainResponse`` bytes: over gRPC in the input map key
``xai_request`` / the ``prediction`` field, over HTTP as the body with content type
``application/x-protobuf``. Transport failures become typed errors here; the handler's own
Status is turned into an error by the caller.
"""

from __future__ import annotations

import http.client
import json
import socket
import urllib.error
import urllib.request
from collections.abc import Iterator
from typing import Protocol

import grpc
from google.protobuf import empty_pb2

from xai_client.api.torchserve import inference_pb2, inference_pb2_grpc, management_pb2, management_pb2_grpc
from xai_client.api.v1 import explain_pb2 as pb
from xai_client.errors import (
    DeadlineExceeded,
    Internal,
    NotFound,
    Unauthenticated,
    Unavailable,
    XaiClientError,
    classify_transport_message,
)

GRPC_INPUT_KEY = "xai_request"
PROTOBUF_CONTENT_TYPE = "application/x-protobuf"
# gRPC messages up to TorchServe's default max_request_size/max_response_size
_MAX_MESSAGE = 64 * 1024 * 1024


class Transport(Protocol):
    def call(
        self, model: str, request: pb.ExplainRequest, *, timeout: float, explain: bool
    ) -> pb.ExplainResponse: ...
    def ping(self, *, timeout: float) -> str: ...
    def list_models(self, *, timeout: float) -> list[dict]: ...
    def describe_model(self, name: str, *, timeout: float, customized: bool = False) -> list[dict]: ...
    def close(self) -> None: ...


def _split(address: str) -> tuple[str, int]:
    host, _, port = address.rpartition(":")
    return host or "127.0.0.1", int(port)


def _parse_response(data: bytes) -> pb.ExplainResponse:
    resp = pb.ExplainResponse()
    try:
        resp.ParseFromString(data)
    except Exception as exc:  # protobuf's DecodeError
        raise Internal(
            f"the server answered something that is not an ExplainResponse ({len(data)} bytes)"
        ) from exc
    return resp


class GrpcTransport:
    def __init__(
        self, address: str, management_address: str, token: str | None, management_token: str | None
    ):
        opts = [
            ("grpc.max_receive_message_length", _MAX_MESSAGE),
            ("grpc.max_send_message_length", _MAX_MESSAGE),
        ]
        self._channel = grpc.insecure_channel(address, options=opts)
        self._mchannel = grpc.insecure_channel(management_address, options=opts)
        self._inference = inference_pb2_grpc.InferenceAPIsServiceStub(self._channel)
        self._management = management_pb2_grpc.ManagementAPIsServiceStub(self._mchannel)
        self._meta = [("authorization", f"Bearer {token}")] if token else []
        self._mmeta = [("authorization", f"Bearer {management_token}")] if management_token else []

    @staticmethod
    def _error(exc: grpc.RpcError) -> XaiClientError:
        code = exc.code() if hasattr(exc, "code") else None
        details = (exc.details() if hasattr(exc, "details") else None) or str(exc)
        if code == grpc.StatusCode.UNAVAILABLE:
            return Unavailable(details)
        if code == grpc.StatusCode.DEADLINE_EXCEEDED:
            return DeadlineExceeded(details)
        if code in (grpc.StatusCode.UNAUTHENTICATED, grpc.StatusCode.PERMISSION_DENIED):
            return Unauthenticated(details)
        if code == grpc.StatusCode.NOT_FOUND:
            return NotFound(details)
        cls = classify_transport_message(details) or Internal
        return cls(details)

    def call(
        self, model: str, request: pb.ExplainRequest, *, timeout: float, explain: bool
    ) -> pb.ExplainResponse:
        req = inference_pb2.PredictionsRequest(
            model_name=model, input={GRPC_INPUT_KEY: request.SerializeToString()}
        )
        try:
            reply = self._inference.Predictions(req, timeout=timeout, metadata=self._meta)
        except grpc.RpcError as exc:
            raise self._error(exc) from None
        return _parse_response(reply.prediction)

    def stream(self, model: str, request: pb.ExplainRequest, *, timeout: float) -> Iterator[bytes]:
        """The raw messages of a streamed answer (``StreamPredictions``); closing the iterator cancels
        the call."""
        req = inference_pb2.PredictionsRequest(
            model_name=model, input={GRPC_INPUT_KEY: request.SerializeToString()}
        )
        call = self._inference.StreamPredictions(req, timeout=timeout, metadata=self._meta)
        try:
            for reply in call:
                yield reply.prediction
        except grpc.RpcError as exc:
            raise self._error(exc) from None
        finally:
            call.cancel()

    def ping(self, *, timeout: float) -> str:
        try:
            reply = self._inference.Ping(empty_pb2.Empty(), timeout=timeout, metadata=self._meta)
        except grpc.RpcError as exc:
            raise self._error(exc) from None
        return json.loads(reply.health).get("status", reply.health)

    def list_models(self, *, timeout: float) -> list[dict]:
        try:
            reply = self._management.ListModels(
                management_pb2.ListModelsRequest(limit=1000), timeout=timeout, metadata=self._mmeta
            )
        except grpc.RpcError as exc:
            raise self._error(exc) from None
        return json.loads(reply.msg).get("models", [])

    def describe_model(self, name: str, *, timeout: float, customized: bool = False) -> list[dict]:
        try:
            reply = self._management.DescribeModel(
                management_pb2.DescribeModelRequest(model_name=name, customized=customized),
                timeout=timeout,
                metadata=self._mmeta,
            )
        except grpc.RpcError as exc:
            raise self._error(exc) from None
        return json.loads(reply.msg)

    def close(self) -> None:
        self._channel.close()
        self._mchannel.close()


class HttpTransport:
    def __init__(
        self, address: str, management_address: str, token: str | None, management_token: str | None
    ):
        self._base = address if "://" in address else f"http://{address}"
        self._mbase = management_address if "://" in management_address else f"http://{management_address}"
        self._token = token
        self._mtoken = management_token

    def _request(
        self,
        url: str,
        *,
        token: str | None,
        timeout: float,
        body: bytes | None = None,
        headers: dict[str, str] | None = None,
    ) -> tuple[int, bytes, str]:
        hdrs = dict(headers or {})
        if token:
            hdrs["Authorization"] = f"Bearer {token}"
        req = urllib.request.Request(
            url, data=body, headers=hdrs, method="POST" if body is not None else "GET"
        )
        try:
            with urllib.request.urlopen(req, timeout=timeout) as resp:
                return resp.status, resp.read(), resp.headers.get("Content-Type", "")
        except urllib.error.HTTPError as exc:
            return exc.code, exc.read(), exc.headers.get("Content-Type", "") if exc.headers else ""
        except TimeoutError as exc:
            raise DeadlineExceeded(f"{url}: no answer within {timeout} s") from exc
        except (urllib.error.URLError, ConnectionError, http.client.HTTPException) as exc:
            reason = getattr(exc, "reason", exc)
            if isinstance(reason, (TimeoutError, socket.timeout)):
                raise DeadlineExceeded(f"{url}: no answer within {timeout} s") from exc
            raise Unavailable(f"{url}: {reason}") from exc

    @staticmethod
    def _error(status: int, data: bytes) -> XaiClientError:
        text = data.decode("utf-8", "replace")
        try:
            message = json.loads(text).get("message", text)
        except (ValueError, AttributeError):
            message = text
        cls = classify_transport_message(message)
        if cls is None:
            cls = {
                401: Unauthenticated,
                403: Unauthenticated,
                404: NotFound,
                408: DeadlineExceeded,
                503: Unavailable,
            }.get(status, Internal)
        return cls(f"HTTP {status}: {message}")

    def call(
        self, model: str, request: pb.ExplainRequest, *, timeout: float, explain: bool
    ) -> pb.ExplainResponse:
        url = f"{self._base}/{'explanations' if explain else 'predictions'}/{model}"
        status, data, ctype = self._request(
            url,
            token=self._token,
            timeout=timeout,
            body=request.SerializeToString(),
            headers={"Content-Type": PROTOBUF_CONTENT_TYPE, "Accept": PROTOBUF_CONTENT_TYPE},
        )
        if ctype.startswith(PROTOBUF_CONTENT_TYPE):
            return _parse_response(data)  # the handler's answer, error statuses included
        raise self._error(status, data)

    def ping(self, *, timeout: float) -> str:
        status, data, _ = self._request(f"{self._base}/ping", token=self._token, timeout=timeout)
        if status != 200:
            raise self._error(status, data)
        return json.loads(data).get("status", "")

    def list_models(self, *, timeout: float) -> list[dict]:
        status, data, _ = self._request(
            f"{self._mbase}/models?limit=1000", token=self._mtoken, timeout=timeout
        )
        if status != 200:
            raise self._error(status, data)
        return json.loads(data).get("models", [])

    def describe_model(self, name: str, *, timeout: float, customized: bool = False) -> list[dict]:
        query = "?customized=true" if customized else ""
        status, data, _ = self._request(
            f"{self._mbase}/models/{name}{query}", token=self._mtoken, timeout=timeout
        )
        if status != 200:
            raise self._error(status, data)
        return json.loads(data)

    def close(self) -> None:
        pass
