"""Served multi-output model (the General Pattern Theory ResGPTNet) against a real TorchServe: predictions
carry the predicted yg/ys maps, component explanations over gRPC and HTTP equal the in-process engine, bad
component targets are typed INVALID_ARGUMENT errors and the worker keeps serving."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from xai_serve.explain import Component, explain_detailed
from xai_serve.models import load_checkpoint
from xai_serve.serving.archive import ArchiveOptions
from xai_serve.testing import write_gpt_checkpoint

pytestmark = [pytest.mark.integration, pytest.mark.slow]

MODEL = "gpt_tiny"
METHODS = {
    "gradient": {},
    "guided_backprop": {},
    "deconvnet": {},
    "gradcam": {"layer": "channel_adj", "relu": "false"},
}


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory, request: pytest.FixtureRequest, private_server):
    root = tmp_path_factory.mktemp("gpt")
    ckpt = write_gpt_checkpoint(root / "ckpt", width=8)
    options = ArchiveOptions(batch_size=4, max_batch_delay_ms=50)
    return private_server(request, root, [(ckpt, MODEL, options)], timeout=240), ckpt


@pytest.mark.parametrize("protocol", ["grpc", "http"])
def test_served_components_equal_in_process(server, protocol: str) -> None:
    served, ckpt = server
    model, _ = load_checkpoint(ckpt)
    x = np.random.default_rng(5).random((1, 28, 28)).astype(np.float32)
    xt = torch.from_numpy(x)[None]
    with torch.no_grad():
        y, yg, ys = model(xt)
    with served.client(protocol) as c:
        pred = c.predict(MODEL, x, normalized=True)
        e = c.explain(MODEL, x, METHODS, target="yg:14,9:predicted", normalized=True)
        e2 = c.explain(MODEL, x, ["gradient"], target="ys:20,3:6", normalized=True)
    assert pred.index == int(y[0].argmax())
    assert np.array_equal(pred.outputs["yg"], yg[0].argmax(0).numpy())
    assert np.array_equal(pred.outputs["ys"], ys[0].argmax(0).numpy())
    ref = explain_detailed(model, xt, METHODS, Component("yg", 14, 9, "predicted"))
    channel = int(yg[0, :, 14, 9].argmax())
    for name in METHODS:
        h = e.heatmap(name)
        np.testing.assert_allclose(h.values, ref[name].heatmap[0].numpy(), rtol=1e-5, atol=1e-6)
        assert (h.component.output, h.component.row, h.component.col, h.component.channel) == (
            "yg",
            14,
            9,
            channel,
        )
        assert h.target == channel
    ref2 = explain_detailed(model, xt, ["gradient"], Component("ys", 20, 3, 6))["gradient"]
    np.testing.assert_allclose(e2.heatmap("gradient").values, ref2.heatmap[0].numpy(), rtol=1e-5, atol=1e-6)
    assert e2.heatmap("gradient").component.channel == 6


@pytest.mark.parametrize("protocol", ["grpc", "http"])
def test_bad_component_targets_are_invalid_argument_and_the_worker_lives(server, protocol: str) -> None:
    from xai_client.errors import InvalidArgument

    served, _ = server
    x = np.random.default_rng(6).random((1, 28, 28)).astype(np.float32)
    with served.client(protocol) as c:
        for target, match in (
            ("yq:1,1", "unknown output"),
            ("yg:28,1:0", "row 28 is out of range"),
            ("ys:1,1:8", "channel 8 is out of range"),
        ):
            with pytest.raises(InvalidArgument, match=match):
                c.explain(MODEL, x, ["gradient"], target=target, normalized=True)
        e = c.explain(MODEL, x, ["gradient"], target="yg:3,3", normalized=True)
    assert e.heatmap("gradient").values is not None
