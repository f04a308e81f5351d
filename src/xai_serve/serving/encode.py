"""Response encoding per transport: gRPC gets ExplainResponse bytes (the outcome is in its Status);
HTTP gets the form its Accept header asks for (JSON, protobuf or PNG) with a matching status code."""

from __future__ import annotations

import json
from dataclasses import dataclass

from google.protobuf import json_format
from xai_client.api.v1 import explain_pb2 as pb

from xai_serve.serving.wire import PROTOBUF_TYPES

PROTOBUF = "application/x-protobuf"
JSON = "application/json"
PNG = "image/png"

HTTP_STATUS: dict[int, tuple[int, str]] = {
    pb.OK: (200, "OK"),
    pb.INVALID_ARGUMENT: (400, "Bad Request"),
    pb.OUT_OF_RANGE: (400, "Bad Request"),
    pb.FAILED_PRECONDITION: (400, "Bad Request"),
    pb.UNAUTHENTICATED: (401, "Unauthorized"),
    pb.PERMISSION_DENIED: (403, "Forbidden"),
    pb.NOT_FOUND: (404, "Not Found"),
    pb.RESOURCE_EXHAUSTED: (429, "Too Many Requests"),
    pb.UNAVAILABLE: (503, "Service Unavailable"),
    pb.DEADLINE_EXCEEDED: (504, "Gateway Timeout"),
}


@dataclass(frozen=True)
class Encoded:
    body: bytes
    content_type: str
    http_status: int
    phrase: str


def wants(accept: str | None) -> str:
    """The response form an Accept header asks for: protobuf, png or json (the default)."""
    accept = (accept or "").lower()
    if any(t in accept for t in PROTOBUF_TYPES):
        return "protobuf"
    if PNG in accept and JSON not in accept:
        return "png"
    return "json"


def response_json(resp: pb.ExplainResponse) -> dict:
    """The proto3 JSON mapping (field names as in the .proto; bytes as base64), status always present."""
    d = json_format.MessageToDict(resp, preserving_proto_field_name=True)
    status = d.setdefault("status", {})
    status.setdefault("code", pb.Code.Name(resp.status.code))
    status.setdefault("message", "")
    return d


def encode_grpc(resp: pb.ExplainResponse) -> Encoded:
    return Encoded(resp.SerializeToString(), PROTOBUF, 200, "OK")


def encode_http(resp: pb.ExplainResponse, accept: str | None) -> Encoded:
    status, phrase = HTTP_STATUS.get(resp.status.code, (500, "Internal Server Error"))
    form = wants(accept)
    if form == "protobuf":
        return Encoded(resp.SerializeToString(), PROTOBUF, status, phrase)
    if form == "png" and resp.status.code == pb.OK:
        png = next((h.png for h in resp.heatmaps if h.png), b"")
        if png:
            return Encoded(png, PNG, status, phrase)
        return Encoded(
            json.dumps(
                {
                    "status": {
                        "code": "INVALID_ARGUMENT",
                        "message": "Accept: image/png needs a request with at least one method",
                    }
                }
            ).encode(),
            JSON,
            400,
            "Bad Request",
        )
    return Encoded(json.dumps(response_json(resp)).encode("utf-8"), JSON, status, phrase)
