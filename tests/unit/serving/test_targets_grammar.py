"""The one textual target grammar and output-form table (client package), used by the client, both CLIs
and the server's decoder of raw-image requests."""

from __future__ import annotations

import pytest
from xai_client.api.v1 import explain_pb2 as pb
from xai_client.cli import build_parser
from xai_client.requests import build_request
from xai_client.targets import (
    OUTPUT_FORMS,
    TargetSyntaxError,
    format_target,
    parse_output_form,
    parse_target,
)

from xai_serve.errors import InvalidInputError, InvalidTargetError
from xai_serve.serving.wire import parse_payload


@pytest.mark.parametrize(
    ("text", "kind", "value"),
    [
        (None, "predicted", True),
        ("", "predicted", True),
        ("predicted", "predicted", True),
        ("PREDICTED", "predicted", True),
        ("7", "class_index", 7),
        (3, "class_index", 3),
        ("top3", "top_k", 3),
        ("Top-3", "top_k", 3),
        ("top_3", "top_k", 3),
        ("top:3", "top_k", 3),
    ],
)
def test_simple_targets(text, kind: str, value) -> None:
    t = parse_target(text)
    assert t.WhichOneof("kind") == kind and getattr(t, kind) == value
    assert parse_target(format_target(t)) == t


@pytest.mark.parametrize(
    ("text", "output", "row", "col", "channel"),
    [
        ("yg:14,9:predicted", "yg", 14, 9, None),
        ("yg:14,9", "yg", 14, 9, None),
        ("ys:0,27:3", "ys", 0, 27, 3),
        ("yg:1,2:Predicted", "yg", 1, 2, None),
    ],
)
def test_component_targets(text: str, output: str, row: int, col: int, channel: int | None) -> None:
    t = parse_target(text)
    c = t.component
    assert t.WhichOneof("kind") == "component"
    assert (c.output, c.row, c.col) == (output, row, col)
    if channel is None:
        assert c.WhichOneof("channel_kind") == "predicted_channel" and c.predicted_channel
    else:
        assert c.WhichOneof("channel_kind") == "channel" and c.channel == channel
    assert parse_target(format_target(t)) == t


@pytest.mark.parametrize(
    "bad",
    ["top", "top0", "top-x", "-1", -1, "best", "1.5", "yg:14", "yg:14,9:x", "yg:-1,2", ":1,2", True, 2.0],
)
def test_malformed_targets_raise(bad) -> None:
    with pytest.raises(TargetSyntaxError):
        parse_target(bad)


def test_output_forms() -> None:
    assert set(OUTPUT_FORMS) == {"tensor", "png", "both"}
    assert parse_output_form("") == pb.OUTPUT_FORM_UNSPECIFIED
    assert parse_output_form("PNG") == pb.OUTPUT_FORM_PNG
    with pytest.raises(TargetSyntaxError, match="tensor, png, both"):
        parse_output_form("jpeg")
    with pytest.raises(ValueError):
        build_request(b"x", methods=["gradient"], output="jpeg")


def test_client_request_and_server_decoder_agree(digit_png: bytes) -> None:
    for text in ("7", "predicted", "top3", "yg:14,9:predicted", "ys:2,3:1"):
        client = build_request(digit_png, methods=["gradient"], target=text, output="both").target
        row = {"body": digit_png, "method": b"gradient", "target": text.encode(), "output": b"both"}
        server = parse_payload(row, "image/png")
        assert server.target == client, text
        assert server.output == pb.OUTPUT_FORM_BOTH
        headers = {"X-Xai-Method": "gradient", "X-Xai-Target": text}
        assert parse_payload({"body": digit_png}, "image/png", headers).target == client


def test_decoder_errors_are_typed(digit_png: bytes) -> None:
    with pytest.raises(InvalidTargetError, match="top"):
        parse_payload({"body": digit_png, "target": b"top"}, "image/png")
    with pytest.raises(InvalidInputError, match="output"):
        parse_payload({"body": digit_png, "output": b"jpeg"}, "image/png")


def test_cli_checks_the_grammar(capsys: pytest.CaptureFixture[str]) -> None:
    parser = build_parser()
    args = parser.parse_args(["explain", "a.png", "--model", "m", "--method", "gradient", "--out", "o"])
    assert args.target is None
    args = parser.parse_args(
        ["explain", "a.png", "--model", "m", "--method", "lrp", "--out", "o", "--target", "yg:14,9:predicted"]
    )
    assert args.target == "yg:14,9:predicted"
    with pytest.raises(SystemExit):
        parser.parse_args(
            ["explain", "a.png", "--model", "m", "--method", "lrp", "--out", "o", "--target", "top"]
        )
    assert "topK" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("given", "indices"), [("3,5,7", [3, 5, 7]), (" 1, 0 ", [1, 0]), ([2, 9], [2, 9]), ((4, 4), [4, 4])]
)
def test_class_lists(given, indices: list[int]) -> None:
    msg = parse_target(given)
    assert msg.WhichOneof("kind") == "classes" and list(msg.classes.indices) == indices
    assert parse_target(format_target(msg)) == msg


@pytest.mark.parametrize("bad", ["3,", ",3", "3,,5", "3,-1", [], [1, True], [1, -2], [1.5]])
def test_malformed_class_lists_raise(bad) -> None:
    with pytest.raises(TargetSyntaxError):
        parse_target(bad)


def test_a_class_list_is_served_in_order_with_one_forward_pass(model, card) -> None:
    import numpy as np
    import torch
    from xai_client.tensors import from_proto

    from xai_serve.explain import ModelContext, explain
    from xai_serve.serving.service import ExplainService

    service = ExplainService("tiny", model, card)
    x = np.random.default_rng(3).normal(size=(1, 28, 28)).astype(np.float32)
    (r,) = service.handle([build_request(x, methods=["gradient"], target="7,2,5", normalized=True)])
    assert r.status.code == pb.OK, r.status.message
    assert [h.target for h in r.heatmaps] == [7, 2, 5]
    context = ModelContext.of(card.mean, card.std)
    for h in r.heatmaps:
        ref = explain(model, torch.from_numpy(x)[None], ["gradient"], [h.target], context)["gradient"][0]
        np.testing.assert_allclose(from_proto(h.values), ref.numpy(), rtol=0, atol=1e-6)
    (bad,) = service.handle([build_request(x, methods=["gradient"], target="7,99", normalized=True)])
    assert bad.status.code == pb.INVALID_ARGUMENT and "99" in bad.status.message
