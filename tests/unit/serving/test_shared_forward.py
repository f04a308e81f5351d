"""The service's shared forward pass (prediction taken from the explanation's own forward pass when a
batch asks for gradient-family methods and LRP): one model forward per batch instead of two, and the same
answers as the two-pass path (prediction, then explanation)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pytest
import torch
from xai_client.api.v1 import explain_pb2 as pb
from xai_client.requests import build_request
from xai_client.tensors import from_proto

from xai_serve.serving.ports import RegistryEngine
from xai_serve.serving.service import ExplainService


def _requests(methods: list[str], targets: list[int | None]) -> list[pb.ExplainRequest]:
    rng = np.random.default_rng(7)
    return [
        build_request(
            rng.normal(size=(1, 28, 28)).astype(np.float32), methods=methods, target=t, normalized=True
        )
        for t in targets
    ]


class TwoPassEngine(RegistryEngine):
    """The production engine, declaring that no method set reports the prediction of its own forward pass
    (as an engine whose methods do not would): the service answers with its two-pass path."""

    def prediction_pass(self, names: Sequence[str]) -> bool:
        return False


def _answer(service: ExplainService, model: torch.nn.Module, reqs: list[pb.ExplainRequest]):
    calls: list[int] = []
    hook = model.register_forward_hook(lambda m, i, o: calls.append(len(i[0])))
    try:
        responses = service.handle(reqs)
    finally:
        hook.remove()
    return responses, calls


@pytest.mark.parametrize(
    ("methods", "targets"),
    [
        (["gradient"], [None]),
        (["gradient"], [None, None, None, None]),
        (["gradient", "guided_backprop", "gradcam"], [None, None, None]),
        (["input_x_gradient"], [2, 5, 9]),
        (["lrp"], [None, None]),  # LRP's forward pass gives the prediction too
        (["gradient", "guided_backprop", "gradcam", "lrp"], [None, None, None]),  # one pass for all four
    ],
)
def test_one_forward_and_the_same_answers(model, card, methods, targets) -> None:
    service = ExplainService("tiny", model, card)
    reqs = _requests(methods, targets)
    service.handle(reqs[:1])  # once per model: Grad-CAM's default-layer probe (a forward pass of 1)
    shared, shared_calls = _answer(service, model, reqs)
    two_pass_service = ExplainService("tiny", model, card, engine=TwoPassEngine())
    two_pass, two_pass_calls = _answer(two_pass_service, model, reqs)
    assert shared_calls == [len(reqs)]  # one batched forward pass for prediction and explanation
    assert len(two_pass_calls) == 2
    for a, b in zip(shared, two_pass, strict=True):
        assert a.status.code == b.status.code == pb.OK
        assert [t.index for t in a.prediction.top] == [t.index for t in b.prediction.top]
        np.testing.assert_allclose(
            [t.probability for t in a.prediction.top], [t.probability for t in b.prediction.top], rtol=1e-5
        )
        assert [(h.method, h.target) for h in a.heatmaps] == [(h.method, h.target) for h in b.heatmaps]
        for ha, hb in zip(a.heatmaps, b.heatmaps, strict=True):
            np.testing.assert_allclose(from_proto(ha.values), from_proto(hb.values), rtol=1e-5, atol=1e-7)


def test_mixed_targets_take_the_two_pass_path(model, card) -> None:
    service = ExplainService("tiny", model, card)
    reqs = _requests(["gradient"], [None, 3])  # "predicted" beside a class index: not shareable
    responses, calls = _answer(service, model, reqs)
    assert len(calls) == 2
    assert [r.status.code for r in responses] == [pb.OK, pb.OK]
    assert responses[1].heatmaps[0].target == 3
