"""Against a real TorchServe (issue 16): compact answers (channel reduction, float16 / uint8 with scale)
over gRPC, HTTP protobuf and HTTP JSON, decoded by the client with the scale applied; the client
command's --reduce / --value-type / --render / --seed-names."""

from __future__ import annotations

import base64
import io
import json
import urllib.request

import numpy as np
import pytest
from google.protobuf import json_format
from PIL import Image
from xai_client.requests import build_request
from xai_client.values import max_deviation, reduce_channels, value_options

pytestmark = pytest.mark.integration

MODEL = "tiny"
DIGIT = (np.random.default_rng(3).random((28, 28)) * 255).astype(np.uint8)


def _png() -> bytes:
    buf = io.BytesIO()
    Image.fromarray(DIGIT).save(buf, format="PNG")
    return buf.getvalue()


@pytest.mark.parametrize("protocol", ["grpc", "http"])
@pytest.mark.parametrize(("reduction", "value_type"), [("sum", "float16"), ("abs_sum", "uint8")])
def test_compact_values_decode_to_the_reduced_map(served, protocol, reduction, value_type):
    with served.client(protocol) as c:
        full = c.explain(MODEL, _png(), ["guided_backprop"], target=4).heatmap("guided_backprop").values
        got = (
            c.explain(
                MODEL, _png(), ["guided_backprop"], target=4, reduction=reduction, value_type=value_type
            )
            .heatmap("guided_backprop")
            .values
        )
    reduced = reduce_channels(full, reduction)
    assert got.dtype == np.float32 and got.shape == reduced.shape
    bound = max_deviation(full, value_options(reduction, value_type))
    assert float(np.abs(got - reduced).max()) <= bound + 1e-7 * float(np.abs(reduced).max())


def test_json_request_with_value_options(served):
    cfg = served.config
    req = build_request(_png(), methods=["gradient"], target=2, reduction="sum", value_type="uint8")
    body = json_format.MessageToJson(req).encode()
    http = urllib.request.Request(
        f"{cfg.inference_url}/explanations/{MODEL}",
        data=body,
        headers={"Authorization": f"Bearer {served.tokens['inference']}", "Content-Type": "application/json"},
    )
    with urllib.request.urlopen(http, timeout=60) as r:
        h = json.loads(r.read())["heatmaps"][0]
    v = h["values"]
    assert v["dtype"] == "DTYPE_UINT8" and float(v["scale"]) > 0
    data = np.frombuffer(base64.b64decode(v["data"]), np.uint8).reshape(v["shape"])
    decoded = data.astype(np.float32) * np.float32(v["scale"]) + np.float32(v.get("offset", 0.0))
    with served.client("grpc") as c:
        ref = c.explain(MODEL, _png(), ["gradient"], target=2, reduction="sum").heatmap("gradient").values
    assert float(np.abs(decoded - ref).max()) <= float(v["scale"]) / 2 * 1.001 + 1e-12


def test_client_command_compact_and_seed_renders(served, tmp_path):
    from xai_client.cli import main

    img = tmp_path / "digit.png"
    img.write_bytes(_png())
    out = tmp_path / "out"
    rc = main(
        ["explain", str(img), "--model", MODEL, "--method", "guided_backprop", "--address",
         served.config.grpc_address, "--key-file", str(served.config.key_file), "--out", str(out),
         "--reduce", "sum", "--value-type", "float16", "--render", "gray", "--seed-names"]
    )  # fmt: skip
    assert rc == 0
    values = np.load(out / "digit_guided_backprop.npy")
    assert values.dtype == np.float32 and values.shape == (1, 28, 28)
    for suffix in ("", "_Guided_BP_color", "_Guided_BP_gray", "_pos_sal", "_neg_sal"):
        assert (out / f"digit_guided_backprop{suffix}.png").read_bytes().startswith(b"\x89PNG")
