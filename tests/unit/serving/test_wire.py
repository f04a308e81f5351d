"""Wire parsing: gRPC, HTTP protobuf, JSON and raw-image requests -> ``ExplainRequest``."""

from __future__ import annotations

import pytest
from xai_client.api.v1 import explain_pb2 as pb

from xai_serve.errors import InvalidInputError, InvalidTargetError
from xai_serve.serving.wire import parse_payload, parse_protobuf


def test_protobuf_parsing():
    with pytest.raises(InvalidInputError, match="empty request"):
        parse_protobuf(b"")
    with pytest.raises(InvalidInputError, match="malformed"):
        parse_protobuf(b"\xff\xff\xff\xff garbage")
    req = pb.ExplainRequest(methods=[pb.MethodRequest(name="gradient")])
    req.input.encoded = b"x"
    assert parse_protobuf(req.SerializeToString()) == req


def test_payload_forms(digit_png):
    req = pb.ExplainRequest()
    req.input.encoded = digit_png
    req.methods.add(name="gradient", params={"abs": "true"})
    req.target.class_index = 4
    assert parse_payload({"xai_request": req.SerializeToString()}, None) == req
    assert parse_payload({"body": req.SerializeToString()}, "application/x-protobuf") == req
    # TorchServe hands JSON bodies over already decoded
    from google.protobuf import json_format

    as_json = json_format.MessageToDict(req)
    assert parse_payload({"body": as_json}, "application/json") == req
    # a raw image with query parameters
    raw = parse_payload(
        {"body": digit_png, "method": b"gradient,gradcam", "target": b"top2", "output": b"png"}, "image/png"
    )
    assert [m.name for m in raw.methods] == ["gradient", "gradcam"]
    assert raw.target.top_k == 2
    assert raw.output == pb.OUTPUT_FORM_PNG
    hdr = parse_payload({"body": digit_png}, "image/png", {"X-Xai-Method": "lrp", "X-Xai-Target": "3"})
    assert [m.name for m in hdr.methods] == ["lrp"] and hdr.target.class_index == 3
    with pytest.raises(InvalidInputError, match="empty request"):
        parse_payload({}, None)
    with pytest.raises(InvalidInputError, match="malformed JSON"):
        parse_payload({"body": b"{not json"}, "application/json")
    with pytest.raises(InvalidTargetError):
        parse_payload({"body": digit_png, "target": b"banana"}, "image/png")
