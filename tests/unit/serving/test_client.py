"""The torch-free client pieces, without a server: import boundary, tensors, requests, errors,
tokens, overlays, and transports against a dead address."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest
import xai_client
from xai_client.api.v1 import explain_pb2 as pb
from xai_client.errors import (
    DeadlineExceeded,
    Internal,
    InvalidArgument,
    NotFound,
    Unauthenticated,
    Unavailable,
    classify_transport_message,
    error_for_code,
)
from xai_client.overlay import colourise, overlay, overlay_png
from xai_client.requests import build_request
from xai_client.tensors import from_proto, to_proto
from xai_client.tokens import read_key_file, resolve_tokens


def test_importing_the_client_loads_no_torch():
    code = (
        "import sys, xai_client, xai_client.cli, xai_client.overlay; "
        "print(sorted(m for m in sys.modules if m.split('.')[0] in ('torch', 'torchvision', 'xai_serve')))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


@pytest.mark.parametrize("dtype", ["float32", "float64", "float16", "uint8"])
def test_tensor_round_trip(dtype):
    a = (np.arange(24).reshape(2, 3, 4) % 7).astype(dtype)
    b = from_proto(to_proto(a))
    assert b.dtype == a.dtype and b.shape == a.shape
    np.testing.assert_array_equal(a, b)


def test_tensor_errors():
    with pytest.raises(ValueError, match="unsupported dtype"):
        to_proto(np.zeros(3, np.int64))
    with pytest.raises(ValueError, match="limit"):
        from_proto(to_proto(np.zeros((10, 10), np.float32)), max_elements=99)


def test_build_request_forms(tmp_path):
    (tmp_path / "a.png").write_bytes(b"PNGDATA")
    r = build_request(
        tmp_path / "a.png",
        methods={"lrp": {"composite": "epsilon", "mean": [0.1, 0.2]}},
        target="top3",
        output="both",
    )
    assert r.input.encoded == b"PNGDATA" and r.target.top_k == 3 and r.output == pb.OUTPUT_FORM_BOTH
    assert dict(r.methods[0].params) == {"composite": "epsilon", "mean": "0.1,0.2"}
    assert build_request(b"x", methods="gradient", target=4).target.class_index == 4
    assert build_request(b"x").target.predicted and not build_request(b"x").methods
    with pytest.raises(ValueError):
        build_request(b"x", target="banana")


def test_errors_from_status_and_transport_text():
    assert isinstance(error_for_code("INVALID_ARGUMENT", "m"), InvalidArgument)
    assert isinstance(error_for_code("NOT_FOUND", "m"), NotFound)
    assert isinstance(error_for_code("UNAUTHENTICATED", "m"), Unauthenticated)
    assert isinstance(error_for_code("UNAVAILABLE", "m"), Unavailable)
    assert isinstance(error_for_code("DEADLINE_EXCEEDED", "m"), DeadlineExceeded)
    assert isinstance(error_for_code("SOMETHING_ELSE", "m"), Internal)
    assert (
        classify_transport_message(
            "Token Authorization failed. Token either incorrect, expired, or not provided correctly"
        )
        is Unauthenticated
    )
    assert classify_transport_message("Model not found: nomodel") is NotFound
    assert classify_transport_message("all fine") is None


def test_tokens(tmp_path, monkeypatch):
    key = tmp_path / "key_file.json"
    key.write_text(json.dumps({"management": {"key": "M"}, "inference": {"key": "I"}, "API": {"key": "A"}}))
    assert read_key_file(key).inference == "I"
    monkeypatch.delenv("XAI_SERVE_TOKEN", raising=False)
    monkeypatch.setenv("XAI_SERVE_KEY_FILE", str(key))
    t = resolve_tokens()
    assert (t.inference, t.management) == ("I", "M")
    assert resolve_tokens("explicit").inference == "explicit"


def test_signed_overlay_uses_a_diverging_map():
    h = np.zeros((1, 3, 3))
    h[0, 0, 0], h[0, 2, 2] = 2.0, -2.0
    rgb, alpha = colourise(h, signed=True)
    assert rgb[0, 0, 0] > rgb[0, 0, 2]  # +max: red end
    assert rgb[2, 2, 2] > rgb[2, 2, 0]  # -max: blue end
    np.testing.assert_allclose(rgb[1, 1], [0.97, 0.97, 0.97])  # zero: white
    assert alpha[0, 0] == alpha[2, 2] == 1.0 and alpha[1, 1] == 0.0


def test_unsigned_overlay_and_png():
    img = np.full((4, 4), 128, np.uint8)
    h = np.arange(16, dtype=float).reshape(4, 4)
    out = overlay(img, h, signed=False, scale=2)
    assert out.shape == (8, 8, 3) and out.dtype == np.uint8
    # the strongest pixel is brighter than the weakest
    assert out[-1, -1].sum() > out[0, 0].sum()
    assert overlay_png(img, h, signed=False).startswith(b"\x89PNG")


def test_unreachable_server_is_unavailable_after_retries():
    from xai_serve.serving.server import free_ports

    (port,) = free_ports(1)
    for protocol in ("grpc", "http"):
        c = xai_client.Client(f"127.0.0.1:{port}", protocol, token="t", timeout=2, retries=1, backoff=0.01)
        with pytest.raises(Unavailable):
            c.health()
        c.close()


def test_unsigned_scaling_keeps_zero_and_does_not_amplify_noise():
    _rgb, alpha = colourise(np.array([[0.0, 1.0], [2.0, 4.0]]), signed=False)
    np.testing.assert_allclose(alpha, [[0.0, 0.25], [0.5, 1.0]])
    flat = np.full((4, 4), 2.5848872) + np.random.default_rng(0).normal(scale=1e-7, size=(4, 4))
    _rgb, alpha = colourise(flat, signed=False)
    assert alpha.min() > 0.99  # a constant map renders uniformly, not as amplified float noise
