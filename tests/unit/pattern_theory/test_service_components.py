"""The explain service (in process, no TorchServe) with a multi-output model: predicted yg/ys maps in
``Prediction.outputs``, component targets equal to the engine, typed errors for bad component targets
without failing the other requests of the batch."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from xai_client.api.v1 import explain_pb2 as pb
from xai_client.targets import parse_target
from xai_client.tensors import from_proto, to_proto

from xai_serve.explain import Component, explain_detailed
from xai_serve.models import create_model
from xai_serve.serving.service import ExplainService
from xai_serve.testing import gpt_card

CARD = gpt_card(width=8)


@pytest.fixture(scope="module")
def service() -> ExplainService:
    torch.manual_seed(0)
    return ExplainService("gpt", create_model("resgptnet_small", width=8).eval(), CARD)


def _image(seed: int) -> np.ndarray:
    return np.random.default_rng(seed).random((1, 28, 28)).astype(np.float32)


def _request(img: np.ndarray, target: str, methods: tuple[str, ...] = ("gradient", "guided_backprop")):
    req = pb.ExplainRequest(methods=[pb.MethodRequest(name=m) for m in methods])
    to_proto(img, req.input.tensor)
    req.target.CopyFrom(parse_target(target))
    return req


def test_predicted_maps_and_component_heatmaps_equal_the_engine(service: ExplainService) -> None:
    imgs = [_image(0), _image(1), _image(2)]
    reqs = [_request(imgs[0], "yg:14,9:predicted"), _request(imgs[1], "ys:3,20:5"), _request(imgs[2], "4")]
    responses = service.handle(reqs)
    assert [r.status.code for r in responses] == [pb.OK] * 3
    x = torch.from_numpy(np.stack(imgs))
    with torch.no_grad():
        y, yg, ys = service.model(x)
    for j, resp in enumerate(responses):
        outs = {o.name: from_proto(o.tensor) for o in resp.prediction.outputs}
        assert set(outs) == {"yg", "ys"}
        assert np.array_equal(outs["yg"], yg[j].argmax(0).numpy().astype(np.uint8))
        assert np.array_equal(outs["ys"], ys[j].argmax(0).numpy().astype(np.uint8))
        assert resp.prediction.top[0].index == int(y[j].argmax())
    targets = [Component("yg", 14, 9, "predicted"), Component("ys", 3, 20, 5), 4]
    for j, t in enumerate(targets):
        ref = explain_detailed(service.model, x[j : j + 1], ["gradient", "guided_backprop"], [t])
        for h in responses[j].heatmaps:
            assert np.allclose(from_proto(h.values), ref[h.method].heatmap[0].numpy(), atol=1e-6)
            assert h.target == ref[h.method].classes[0]
            if isinstance(t, Component):
                assert (h.component.output, h.component.row, h.component.col) == (t.output, t.row, t.col)
                assert h.component.channel == h.target
            else:
                assert not h.HasField("component")
    assert responses[0].heatmaps[0].component.channel == int(yg[0, :, 14, 9].argmax())


@pytest.mark.parametrize(
    "target,match",
    [
        ("yq:1,1", "unknown output"),
        ("y:1,1:0", "unknown output"),
        ("yg:28,0:0", "row 28 is out of range"),
        ("ys:0,40", "col 40 is out of range"),
        ("yg:1,1:4", "channel 4 is out of range"),
    ],
)
def test_bad_component_targets_are_invalid_argument_and_the_batch_lives(
    service: ExplainService, target: str, match: str
) -> None:
    bad, good = _request(_image(3), target), _request(_image(4), "yg:5,5")
    responses = service.handle([bad, good])
    assert responses[0].status.code == pb.INVALID_ARGUMENT and match in responses[0].status.message
    assert responses[0].status.reason == "InvalidTargetError"
    assert responses[1].status.code == pb.OK and len(responses[1].heatmaps) == 2
