"""Progress of long explanations: every iterative method reports to the enclosing scope (fraction, ETA,
class_image's image), and a request whose deadline passes mid-way frees the worker within one iteration."""

from __future__ import annotations

import time

import numpy as np
import pytest
import torch
from xai_client.api.v1 import explain_pb2 as pb
from xai_client.requests import build_request

from xai_serve.explain import ModelContext, create_explainer
from xai_serve.explain.progress import ProgressEvent, reporting
from xai_serve.serving.limits import CostLimits
from xai_serve.serving.service import ExplainService

ITERATIVE = {
    "class_image": {"iterations": 5},
    "filter_image": {"iterations": 4},
    "integrated_gradients": {"n_steps": 8, "internal_batch": 4},
    "smoothgrad": {"samples": 6, "seed": 0, "internal_batch": 2},
    "occlusion": {"window": 7, "stride": 7, "internal_batch": 5},
}


@pytest.mark.parametrize("method", sorted(ITERATIVE))
def test_iterative_methods_report_progress(model, card, method: str) -> None:
    events: list[ProgressEvent] = []
    x = torch.from_numpy(np.random.default_rng(0).normal(size=(1, 1, 28, 28)).astype(np.float32))
    explainer = create_explainer(
        method, model, context=ModelContext.of(card.mean, card.std), **ITERATIVE[method]
    )
    with reporting(events.append):
        explainer(x, [3])
    assert events and all(e.method == method for e in events)
    assert [e.done for e in events] == sorted(e.done for e in events)
    assert events[-1].fraction == 1.0 and events[-1].eta_s == 0.0
    assert all(0 < e.fraction <= 1 for e in events)
    if method == "class_image":
        assert events[0].image is not None and events[0].image.shape == x.shape
    explainer(x, [3])  # outside a scope: nothing reported, nothing raised


def test_a_timed_out_request_frees_the_worker_within_one_iteration(model, card) -> None:
    service = ExplainService("tiny", model, card, cost_limits=CostLimits(max_iterations=100000, max_work=1e9))
    x = np.random.default_rng(1).normal(size=(1, 28, 28)).astype(np.float32)
    # 10000 class_image steps: tens of seconds on this model; the deadline stops it after about 1 s
    long = build_request(x, methods={"class_image": {"iterations": "10000"}}, target=3, normalized=True)
    long.deadline_unix_s = time.time() + 1.0
    t0 = time.perf_counter()
    (r,) = service.handle([long])
    held = time.perf_counter() - t0
    assert r.status.code == pb.DEADLINE_EXCEEDED, r.status.message
    assert held < 1.0 + 1.0  # one iteration of the tiny model is milliseconds; the bound absorbs load
    t1 = time.perf_counter()
    (nxt,) = service.handle([build_request(x, methods=["gradient"], target=3, normalized=True)])
    assert nxt.status.code == pb.OK and time.perf_counter() - t1 < 2.0
