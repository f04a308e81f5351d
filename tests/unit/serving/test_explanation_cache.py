"""The explanation cache of a served model: a repeated request is answered bit-identically from it (its
timings say so), any difference in parameters, target or pixels misses, unseeded randomness is never
cached, the size bound evicts the least recently used, and the TorchServe metrics report it."""

from __future__ import annotations

import logging
import re

import numpy as np
import pytest
from xai_client.api.v1 import explain_pb2 as pb
from xai_client.requests import build_request

from xai_serve.serving.explanation_cache import ExplanationCache, explanation_cache
from xai_serve.serving.metrics import TorchServeObserver, write_metrics_config
from xai_serve.serving.service import ExplainService


def _x(seed: int) -> np.ndarray:
    return np.random.default_rng(seed).normal(size=(1, 28, 28)).astype(np.float32)


def _service(model, card, mib: float = 4.0) -> ExplainService:
    return ExplainService("tiny", model, card, cache=ExplanationCache("w" * 64, int(mib * 2**20)))


def _answer(service: ExplainService, req: pb.ExplainRequest) -> pb.ExplainResponse:
    (r,) = service.handle([req])
    assert r.status.code == pb.OK, r.status.message
    return r


def _body(r: pb.ExplainResponse) -> list[bytes]:
    """The heatmaps, serialised (the prediction of a shared pass may differ from the model's own forward
    in the last float bit: LRP's pass merges BatchNorm; the explanations are what the cache holds)."""
    return [h.SerializeToString(deterministic=True) for h in r.heatmaps]


@pytest.mark.parametrize(
    ("methods", "target"),
    [
        (["gradient", "lrp"], None),
        ({"integrated_gradients": {"n_steps": "4"}}, "top3"),
        ({"occlusion": {"window": "7", "stride": "7"}}, 3),
        ({"smoothgrad": {"samples": "3", "seed": "1"}}, "predicted"),
    ],
)
def test_a_repeated_request_is_a_bit_identical_hit(model, card, methods, target) -> None:
    service = _service(model, card)
    req = build_request(_x(0), methods=methods, target=target, normalized=True, output="both")
    first = _answer(service, req)
    second = _answer(service, req)
    assert not first.timings.cached and second.timings.cached
    assert _body(first) == _body(second)
    assert (service.cache.stats.hits, service.cache.stats.misses) == (len(req.methods), len(req.methods))


def test_any_difference_misses(model, card) -> None:
    service = _service(model, card)
    first = {"integrated_gradients": {"n_steps": "4"}}
    _answer(service, build_request(_x(0), methods=first, target=3, normalized=True))
    for req in (
        build_request(_x(0), methods={"integrated_gradients": {"n_steps": "5"}}, target=3, normalized=True),
        build_request(_x(0), methods={"integrated_gradients": {"n_steps": "4"}}, target=4, normalized=True),
        build_request(_x(1), methods={"integrated_gradients": {"n_steps": "4"}}, target=3, normalized=True),
    ):
        assert not _answer(service, req).timings.cached
    # the same parameters written differently are one key (canonicalised: converted, defaults filled in)
    params = {"n_steps": " 4", "integration": "gausslegendre"}
    same = build_request(_x(0), methods={"integrated_gradients": params}, target=3, normalized=True)
    assert _answer(service, same).timings.cached


def test_one_pixel_differs_misses(model, card) -> None:
    service = _service(model, card)
    x = _x(2)
    _answer(service, build_request(x, methods=["gradient"], target=1, normalized=True))
    y = x.copy()
    y[0, 5, 5] = np.nextafter(y[0, 5, 5], np.float32(np.inf))
    assert not _answer(
        service, build_request(y, methods=["gradient"], target=1, normalized=True)
    ).timings.cached


def test_unseeded_randomness_is_never_cached(model, card) -> None:
    service = _service(model, card)
    req = build_request(_x(0), methods={"smoothgrad": {"samples": "3"}}, target=1, normalized=True)
    first, second = _answer(service, req), _answer(service, req)
    assert not first.timings.cached and not second.timings.cached
    assert service.cache.stats.entries == 0
    assert _body(first) != _body(second)


def test_the_size_bound_evicts_the_least_recently_used(model, card) -> None:
    one_map = 28 * 28 * 4 + 256
    service = ExplainService("tiny", model, card, cache=ExplanationCache("w", 2 * one_map))
    reqs = [build_request(_x(s), methods=["gradient"], target=1, normalized=True) for s in range(3)]
    for r in reqs:
        _answer(service, r)
    assert service.cache.stats.entries == 2 and service.cache.stats.bytes <= 2 * one_map
    assert not _answer(service, reqs[0]).timings.cached  # evicted
    assert _answer(service, reqs[2]).timings.cached


def test_caches_of_two_models_are_separate(model, card) -> None:
    a, b = _service(model, card), _service(model, card)
    req = build_request(_x(0), methods=["gradient"], target=1, normalized=True)
    _answer(a, req)
    assert not _answer(b, req).timings.cached
    other_weights = ExplanationCache("v" * 64, 2**20)
    spec = a.methods["gradient"]
    assert other_weights.key(spec, {}, req.target, "d") != a.cache.key(spec, {}, req.target, "d")


def test_archive_config_and_default(model, card) -> None:
    assert explanation_cache({}).max_bytes == 16 * 2**20
    assert not explanation_cache({"cache_mib": 0}).enabled
    from xai_serve.errors import InvalidArgumentError

    with pytest.raises(InvalidArgumentError):
        explanation_cache({"cache_mib": "lots"})
    assert not ExplainService("tiny", model, card).cache.enabled  # no cache unless the archive asks


def test_cache_metrics_reach_torchserve(tmp_path, model, card) -> None:
    from ts.metrics.metric_cache_yaml_impl import MetricsCacheYamlImpl

    metrics = MetricsCacheYamlImpl(str(write_metrics_config(tmp_path / "m.yaml")))
    metrics.initialize_cache()
    lines: list[str] = []

    class Grab(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            lines.append(record.getMessage())

    logger = logging.getLogger("ts.metrics.caching_metric")
    grab, old = Grab(), logger.level
    logger.addHandler(grab)
    logger.setLevel(logging.INFO)
    try:
        service = ExplainService(
            "tiny",
            model,
            card,
            observer=TorchServeObserver(metrics, "tiny"),
            cache=ExplanationCache("w", 2**20),
        )
        req = build_request(_x(0), methods=["gradient"], target=1, normalized=True)
        _answer(service, req)
        _answer(service, req)
    finally:
        logger.removeHandler(grab)
        logger.setLevel(old)
    text = "\n".join(lines)
    assert re.search(r"\[METRICS\]xai_cache_misses_total\.\w+:1\|#model:tiny", text)
    assert re.search(r"\[METRICS\]xai_cache_hits_total\.\w+:1\|#model:tiny", text)
    assert re.search(r"\[METRICS\]xai_cache_bytes\.\w+:\d+", text)
