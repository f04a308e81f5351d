"""Hardening through a real TorchServe (the session's served model): the describe call serves the
registry's full parameter specs (``Client.methods``), cost limits answer RESOURCE_EXHAUSTED naming the
limit without holding the worker, a passed deadline is DEADLINE_EXCEEDED, an unknown enum value is
INVALID_ARGUMENT, the raw-image path takes the one target grammar, Grad-CAM names its layer."""

from __future__ import annotations

import io
import time

import numpy as np
import pytest
from PIL import Image
from xai_client import DeadlineExceeded, InvalidArgument, ResourceExhausted
from xai_client.requests import build_request

from xai_serve.explain import list_methods
from xai_serve.serving.limits import CostLimits

pytestmark = pytest.mark.integration

MODEL = "tiny"


def _png() -> bytes:
    buf = io.BytesIO()
    Image.fromarray((np.random.default_rng(0).random((28, 28)) * 255).astype(np.uint8)).save(buf, "PNG")
    return buf.getvalue()


@pytest.mark.parametrize("protocol", ["grpc", "http"])
def test_client_methods_come_from_the_registry(served, protocol: str) -> None:
    with served.client(protocol) as c:
        methods = c.methods(MODEL)
    specs = list_methods()
    assert set(methods) == set(specs)
    for name, info in methods.items():
        assert set(info.params) == set(specs[name].params)
        assert info.signed == specs[name].signed and info.output == specs[name].output
        for pname, p in info.params.items():
            assert p.type == specs[name].params[pname].type and p.doc == specs[name].params[pname].help
    assert methods["class_image"].iterations == "iterations"


def test_limits_deadline_and_enums_over_grpc(served) -> None:
    limits = CostLimits()  # the archive of the session's server keeps the defaults
    data = _png()
    with served.client("grpc", timeout=60) as c:
        t0 = time.perf_counter()
        with pytest.raises(ResourceExhausted, match=f"max_iterations={limits.max_iterations}"):
            c.explain(MODEL, data, {"class_image": {"iterations": str(limits.max_iterations * 20)}})
        assert time.perf_counter() - t0 < 20  # refused, not computed
        with pytest.raises(ResourceExhausted, match="max_rows"):
            c.explain(MODEL, data, {m: {} for m in list_methods()}, target="top10")
        late = build_request(data, methods=["gradient"])
        late.deadline_unix_s = time.time() - 5
        with pytest.raises(DeadlineExceeded, match="deadline"):
            c.send(MODEL, late)
        bad = build_request(data, methods=["gradient"])
        bad.output = 99
        with pytest.raises(InvalidArgument, match="OutputForm"):
            c.send(MODEL, bad)
        e = c.explain(MODEL, data, ["gradcam", "gradient"], target="top2")
    assert {h.target for h in e.heatmaps if h.method == "gradcam"} == {p.index for p in e.prediction.top[:2]}
    assert all(h.layer.startswith("features.") for h in e.heatmaps if h.method == "gradcam")


def test_raw_image_headers_use_the_target_grammar(served) -> None:
    import json
    import urllib.request

    c = served.config
    req = urllib.request.Request(
        f"{c.inference_url}/explanations/{MODEL}",
        data=_png(),
        headers={
            "Content-Type": "image/png",
            "X-Xai-Method": "gradient",
            "X-Xai-Target": "Top-2",
            "Authorization": f"Bearer {served.tokens['inference']}",
        },
        method="POST",
    )
    with urllib.request.urlopen(req, timeout=60) as resp:
        body = json.loads(resp.read())
    assert body["status"]["code"] == "OK" and len(body["heatmaps"]) == 2
