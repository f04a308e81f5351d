"""The transport-neutral service: one typed answer per request, equal to the in-process engine."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from xai_client.api.v1 import explain_pb2 as pb
from xai_client.requests import build_request
from xai_client.tensors import from_proto

from xai_serve.errors import InvalidInputError
from xai_serve.explain import ModelContext, explain, list_methods
from xai_serve.serving.heatmaps import OVERLAY_MIN_WIDTH, overlay_scale
from xai_serve.serving.ports import RegistryEngine
from xai_serve.serving.service import ExplainService


class Observer:
    def __init__(self) -> None:
        self.explained_calls: list[tuple[str, str, int]] = []
        self.batches: list[int] = []

    def explained(self, method: str, status: str, seconds: float, count: int) -> None:
        self.explained_calls.append((method, status, count))

    def batch(self, size: int) -> None:
        self.batches.append(size)


@pytest.fixture(scope="module")
def service(model, card):
    return ExplainService("tiny", model, card)


def _x(seed: int) -> np.ndarray:
    return np.random.default_rng(seed).normal(size=(1, 28, 28)).astype(np.float32)


# keep the sweep fast: each spec's test parameters (class_image: a few steps show the plumbing is exact)
FAST = {name: {k: str(v) for k, v in spec.test_params.items()} for name, spec in list_methods().items()}
# methods whose result for a sample depends on its batch (class_image seeds noise per batch)
PER_BATCH = {"class_image"}


@pytest.mark.parametrize("method", sorted(list_methods()))
def test_every_method_equals_the_in_process_engine(service, model, card, method):
    xs = [_x(s) for s in range(3)]
    methods = {method: FAST.get(method, {})}
    reqs = [
        build_request(x, methods=methods, target=t, normalized=True)
        for x, t in zip(xs, [1, 7, None], strict=True)
    ]
    resps = [service.handle([r])[0] for r in reqs] if method in PER_BATCH else service.handle(reqs)
    for x, t, r in zip(xs, [1, 7, None], resps, strict=True):
        assert r.status.code == pb.OK, r.status.message
        xt = torch.from_numpy(x)[None]
        target = t if t is not None else int(model(xt).argmax())
        context = ModelContext.of(card.mean, card.std)  # the service's one source of mean/std: the card
        ref = explain(model, xt, {method: FAST[method]}, [target], context)[method][0]
        (h,) = r.heatmaps
        assert h.method == method and h.target == target
        got = from_proto(h.values)
        np.testing.assert_allclose(got, ref.detach().numpy(), rtol=0, atol=1e-6)
        assert h.signed == list_methods()[method].signed


def test_prediction_is_the_softmax_top_k(service, model):
    x = _x(5)
    (r,) = service.handle([build_request(x, top_k=3, normalized=True)])
    assert r.status.code == pb.OK and not r.heatmaps
    with torch.no_grad():
        p = torch.softmax(model(torch.from_numpy(x)[None]), dim=1)[0]
    top = p.topk(3)
    assert [s.index for s in r.prediction.top] == top.indices.tolist()
    np.testing.assert_allclose([s.probability for s in r.prediction.top], top.values.numpy(), rtol=1e-6)
    assert r.prediction.top[0].label == f"digit {top.indices[0]}"


def test_a_batch_mixing_good_and_bad_requests_answers_each(service, digit_png):
    good = build_request(_x(0), methods=["gradient"], target=2, normalized=True)
    reqs = [
        good,
        build_request(b"not an image", methods=["gradient"]),
        build_request(_x(1), methods=["no_such_method"], normalized=True),
        build_request(_x(2), methods=["gradient"], target=10, normalized=True),
        build_request(np.full((1, 28, 28), np.nan, np.float32), methods=["gradient"]),
        InvalidInputError("malformed protobuf"),  # what the handler passes for an unparseable payload
        build_request(digit_png, methods=["gradient"], target=2),
        build_request(_x(3), methods={"gradient": {"abs": "maybe"}}, normalized=True),
    ]
    resps = service.handle(reqs)
    assert len(resps) == len(reqs)
    codes = [pb.Code.Name(r.status.code) for r in resps]
    assert codes == [
        "OK",
        "INVALID_ARGUMENT",
        "NOT_FOUND",
        "INVALID_ARGUMENT",
        "INVALID_ARGUMENT",
        "INVALID_ARGUMENT",
        "OK",
        "INVALID_ARGUMENT",
    ]
    assert "abs" in resps[7].status.message  # the engine's InvalidParameterError names the parameter
    (alone,) = service.handle([good])
    # same numbers as when served alone (batch composition only reorders float sums)
    np.testing.assert_allclose(
        from_proto(resps[0].heatmaps[0].values), from_proto(alone.heatmaps[0].values), rtol=0, atol=1e-6
    )
    assert not resps[1].heatmaps and not resps[1].prediction.top


def test_top_k_target_explains_each_class(service, model):
    x = _x(4)
    (r,) = service.handle(
        [build_request(x, methods=["gradient", "input_x_gradient"], target="top3", normalized=True)]
    )
    with torch.no_grad():
        top = model(torch.from_numpy(x)[None])[0].topk(3).indices.tolist()
    assert [(h.method, h.target) for h in r.heatmaps] == [
        (m, t) for t in top for m in ("gradient", "input_x_gradient")
    ]


def test_png_output_and_timings(service):
    (r,) = service.handle([build_request(_x(0), methods=["gradient"], output="both", normalized=True)])
    h = r.heatmaps[0]
    assert h.png.startswith(b"\x89PNG") and h.HasField("values")
    (p,) = service.handle([build_request(_x(0), methods=["gradient"], output="png", normalized=True)])
    assert p.heatmaps[0].png and not p.heatmaps[0].HasField("values")
    assert r.timings.total_ms >= r.timings.explain_ms > 0 and r.timings.batch_size == 1


def test_observer_counts_by_method_and_status(model, card):
    obs = Observer()
    svc = ExplainService("tiny", model, card, observer=obs)
    svc.handle(
        [
            build_request(_x(0), methods=["gradient"], normalized=True),
            build_request(_x(1), methods=["gradient"], normalized=True),
            build_request(_x(2), methods=["bogus"], normalized=True),
            build_request(b"junk", methods=["gradient"]),
        ]
    )
    assert obs.batches == [4]
    assert sorted(obs.explained_calls) == sorted(
        [("gradient", "ok", 2), ("unknown", "not_found", 1), ("gradient", "invalid_argument", 1)]
    )


class FlakyEngine(RegistryEngine):
    """The production engine, failing with a bug (not an XaiError) whenever class 9 is a target."""

    def __init__(self) -> None:
        self.calls: list[int] = []

    def explain(self, model, x, methods, target, context):
        self.calls.append(len(x))
        if 9 in (target if isinstance(target, list) else [target]):
            raise RuntimeError("boom")
        return super().explain(model, x, methods, target, context)


def test_unexpected_engine_failure_is_internal_and_isolated(model, card, caplog):
    engine = FlakyEngine()
    svc = ExplainService("tiny", model, card, engine=engine)
    resps = svc.handle(
        [
            build_request(_x(0), methods=["gradient"], target=1, normalized=True),
            build_request(_x(1), methods=["gradient"], target=9, normalized=True),
        ]
    )
    assert [pb.Code.Name(r.status.code) for r in resps] == ["OK", "INTERNAL"]
    assert "boom" in resps[1].status.message
    assert resps[0].heatmaps and not resps[1].heatmaps
    assert engine.calls == [2, 2, 1, 1]  # the shared pass, the batch, then each request alone
    assert any("request 1 failed" in r.getMessage() and r.exc_info for r in caplog.records)  # traceback


class BrokenEvidence:
    """Unit evidence (the ``UnitEvidence`` port) with a bug for class 9; one unit for every other class."""

    def fill(self, h, req, model, x, target, method, result, j, *, context) -> None:
        if target == 9:
            raise KeyError("no unit table")
        h.units.add(layer="features", unit=target, contribution=1.0, formula="stripes", iou=0.5)


def test_a_bug_encoding_one_request_fails_that_request_alone(model, card, caplog):
    svc = ExplainService("tiny", model, card, dissection=BrokenEvidence())
    resps = svc.handle(
        [
            build_request(_x(0), methods=["gradient"], target=1, normalized=True),
            build_request(_x(1), methods=["gradient"], target=9, normalized=True),
            build_request(_x(2), methods=["gradient"], target=4, normalized=True),
        ]
    )
    assert [pb.Code.Name(r.status.code) for r in resps] == ["OK", "INTERNAL", "OK"]
    assert [u.unit for u in resps[0].heatmaps[0].units] == [1] and not resps[1].heatmaps
    assert resps[2].heatmaps[0].units[0].unit == 4
    assert any("request 1 failed" in r.getMessage() and r.exc_info for r in caplog.records)


@pytest.mark.parametrize(("width", "scale"), [(28, 8), (32, 7), (224, 1), (500, 1), (0, 224)])
def test_png_overlays_are_drawn_at_least_overlay_min_width_wide(width: int, scale: int) -> None:
    assert overlay_scale(width) == scale
    assert width * scale >= OVERLAY_MIN_WIDTH or width == 0


@pytest.mark.parametrize("methods", [["gradient", "gradcam"], ["lrp"], ["smoothgrad"]])
def test_top_k_in_one_pass_equals_single_target_calls(service, model, card, methods, monkeypatch):
    """A topK request's K rows run as one forward pass (``target_runs`` -> ``explain_targets``); the maps
    equal K single-target engine calls to 1e-6; two topK requests of a batch share the pass too."""
    import xai_serve.serving.ports as ports

    calls: list[int] = []
    real = ports.explain_targets

    def counting(model_, x, methods_, classes, context=None):
        calls.append(len(classes))
        return real(model_, x, methods_, classes, context=context)

    monkeypatch.setattr(ports, "explain_targets", counting)
    params = {m: FAST[m] for m in methods}
    xs = [_x(11), _x(12)]
    resps = service.handle([build_request(x, methods=params, target="top3", normalized=True) for x in xs])
    assert calls == [2]
    context = ModelContext.of(card.mean, card.std)
    for x, r in zip(xs, resps, strict=True):
        assert r.status.code == pb.OK, r.status.message
        xt = torch.from_numpy(x)[None]
        with torch.no_grad():
            top = model(xt)[0].topk(3).indices.tolist()
        assert [(h.method, h.target) for h in r.heatmaps] == [(m, t) for t in top for m in methods]
        for h in r.heatmaps:
            ref = explain(model, xt, {h.method: params[h.method]}, [h.target], context)[h.method][0]
            np.testing.assert_allclose(from_proto(h.values), ref.numpy(), rtol=0, atol=1e-6)
