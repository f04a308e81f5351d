"""Wire parsing: one TorchServe request (gRPC input, HTTP protobuf, JSON or raw image body) -> a typed
``xai_serve.v1.ExplainRequest``.

Everything here raises :class:`~xai_serve.errors.InvalidInputError` (or another typed ``XaiError``)
with a message naming the problem. Nothing here decodes pixels (:mod:`xai_serve.serving.inputs`) or
touches the model.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from google.protobuf import json_format
from google.protobuf.message import DecodeError
from xai_client.api.v1 import explain_pb2 as pb
from xai_client.targets import TargetSyntaxError, parse_output_form, parse_target
from xai_client.values import value_options

from xai_serve.errors import InvalidInputError, InvalidTargetError

PROTOBUF_TYPES = ("application/x-protobuf", "application/protobuf", "application/vnd.google.protobuf")
JSON_TYPES = ("application/json",)
GRPC_INPUT_KEY = "xai_request"
# request keys TorchServe may use for the payload: gRPC input map key, raw HTTP body, form field
PAYLOAD_KEYS = (GRPC_INPUT_KEY, "body", "data")


def _as_bytes(value: Any) -> bytes:
    if isinstance(value, (bytes, bytearray, memoryview)):
        return bytes(value)
    if isinstance(value, str):
        return value.encode("utf-8")
    if isinstance(value, (dict, list)):  # TorchServe json-decodes application/json bodies
        return json.dumps(value).encode("utf-8")
    raise InvalidInputError(f"unsupported request payload of type {type(value).__name__}")


def _text(value: Any) -> str:
    return value.decode("utf-8", "replace") if isinstance(value, (bytes, bytearray)) else str(value)


def parse_protobuf(data: bytes) -> pb.ExplainRequest:
    if not data:
        raise InvalidInputError("empty request: send an ExplainRequest (protobuf) with an image")
    req = pb.ExplainRequest()
    try:
        req.ParseFromString(data)
    except DecodeError as exc:
        raise InvalidInputError(f"malformed protobuf: not an xai_serve.v1.ExplainRequest ({exc})") from None
    # a parse that succeeds on garbage often yields unknown fields only; insist on an input
    if not req.HasField("input"):
        raise InvalidInputError("malformed request: ExplainRequest.input is missing")
    return req


def parse_json(data: Any) -> pb.ExplainRequest:
    obj = data
    if isinstance(data, (bytes, bytearray, str)):
        if not data:
            raise InvalidInputError("empty request body")
        try:
            obj = json.loads(data)
        except ValueError as exc:
            raise InvalidInputError(f"malformed JSON: {exc}") from None
    if not isinstance(obj, dict):
        raise InvalidInputError(
            "the JSON body must be an object (the JSON form of xai_serve.v1.ExplainRequest)"
        )
    req = pb.ExplainRequest()
    try:
        json_format.ParseDict(obj, req)
    except json_format.ParseError as exc:
        raise InvalidInputError(f"malformed JSON ExplainRequest: {exc}") from None
    if not req.HasField("input"):
        raise InvalidInputError("malformed request: 'input' is missing")
    return req


IMAGE_PARAMS = ("method", "target", "output", "top_k", "reduction", "value_type")


def request_from_image_body(data: bytes, params: Mapping[str, Any]) -> pb.ExplainRequest:
    """Raw PNG/JPEG body (or multipart field ``data``) with ``method`` (comma list), ``target``,
    ``output``, ``top_k`` from multipart fields or ``X-Xai-Method``-style headers (see ``parse_payload``)."""
    if not data:
        raise InvalidInputError("empty request body: send a PNG or JPEG image")
    req = pb.ExplainRequest()
    req.input.encoded = data
    methods = [m.strip() for m in _text(params.get("method", "") or "").split(",") if m.strip()]
    for name in methods:
        req.methods.add(name=name)
    try:
        req.target.CopyFrom(parse_target(_text(params.get("target", "") or "")))
    except TargetSyntaxError as exc:
        raise InvalidTargetError(str(exc)) from None
    try:
        req.output = parse_output_form(_text(params.get("output", "") or ""))
    except TargetSyntaxError as exc:
        raise InvalidInputError(str(exc)) from None
    top_k = _text(params.get("top_k", "") or "0")
    if not top_k.isdigit():
        raise InvalidInputError(f"top_k must be a non-negative integer, not {top_k!r}")
    req.top_k = int(top_k)
    reduction = _text(params.get("reduction", "") or "none")
    value_type = _text(params.get("value_type", "") or "float32")
    try:  # compact answers (X-Xai-Reduction / X-Xai-Value-Type), see xai_client.values
        req.values.CopyFrom(value_options(reduction.strip().lower(), value_type.strip().lower()))
    except ValueError as exc:
        raise InvalidInputError(str(exc)) from None
    return req


def parse_payload(
    row: Mapping[str, Any], content_type: str | None, headers: Mapping[str, Any] | None = None
) -> pb.ExplainRequest:
    """Turn one TorchServe request dict into an ExplainRequest (gRPC, protobuf, JSON or raw image).

    For a raw image, the options come from multipart fields (``method``, ``target``, ...) or else from
    request headers ``X-Xai-Method``, ``X-Xai-Target``, ``X-Xai-Output``, ``X-Xai-Top-K``,
    ``X-Xai-Reduction``, ``X-Xai-Value-Type`` (TorchServe does not pass query parameters of a request
    with a body to the handler)."""
    if GRPC_INPUT_KEY in row:
        return parse_protobuf(_as_bytes(row[GRPC_INPUT_KEY]))
    key = next((k for k in PAYLOAD_KEYS if k in row), None)
    if key is None:
        raise InvalidInputError("empty request: no body (send an ExplainRequest or an image)")
    value = row[key]
    ctype = (content_type or "").split(";")[0].strip().lower()
    if isinstance(value, (dict, list)) or ctype in JSON_TYPES:
        return parse_json(value)
    data = _as_bytes(value)
    if ctype in PROTOBUF_TYPES:
        return parse_protobuf(data)
    lowered = {str(k).lower(): v for k, v in (headers or {}).items() if isinstance(v, str)}
    params = {k: row[k] if k in row else lowered.get("x-xai-" + k.replace("_", "-")) for k in IMAGE_PARAMS}
    return request_from_image_body(data, {k: v for k, v in params.items() if v is not None})
