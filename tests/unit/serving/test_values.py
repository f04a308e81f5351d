"""Compact answers (issue 16): ExplainRequest.values — channel reduction and value type — encoded by the
service, decoded by the client to float32 numpy arrays with the scale applied."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from xai_client.api.v1 import explain_pb2 as pb
from xai_client.requests import build_request
from xai_client.results import explanation_from_proto
from xai_client.values import (
    decode_values,
    encode_values,
    max_deviation,
    reduce_channels,
    value_options,
)

from xai_serve.explain import explain
from xai_serve.serving.service import ExplainService


def _map(seed: int = 0, shape: tuple[int, ...] = (3, 16, 16)) -> np.ndarray:
    return (np.random.default_rng(seed).normal(size=shape) * 1e-3).astype(np.float32)


@pytest.mark.parametrize(
    ("reduction", "expected"),
    [
        ("none", lambda v: v),
        ("sum", lambda v: v.sum(0, keepdims=True)),
        ("abs_sum", lambda v: np.abs(v).sum(0, keepdims=True)),
        ("max_abs", lambda v: np.abs(v).max(0, keepdims=True)),
    ],
)
def test_reductions_closed_form(reduction, expected) -> None:
    v = _map()
    ref = expected(v.astype(np.float64))
    np.testing.assert_allclose(reduce_channels(v, reduction), ref, rtol=0, atol=1e-7 * np.abs(ref).max())


def test_float32_is_exact_and_unscaled() -> None:
    v = _map(1)
    msg = encode_values(v, value_options("none", "float32"), pb.Tensor())
    assert msg.dtype == pb.DTYPE_FLOAT32 and msg.scale == 0 and msg.offset == 0
    np.testing.assert_array_equal(decode_values(msg), v)


def test_float16_scaled_relative_precision_and_size() -> None:
    v = _map(2) * 1e-3  # values far below float16's normal range: the scale keeps their precision
    msg = encode_values(v, value_options("sum", "float16"), pb.Tensor())
    assert msg.dtype == pb.DTYPE_FLOAT16 and list(msg.shape) == [1, 16, 16]
    assert len(msg.data) == 16 * 16 * 2
    ref = v.sum(0, keepdims=True)
    got = decode_values(msg)
    assert got.dtype == np.float32
    peak = float(np.abs(ref).max())
    assert float(np.abs(got - ref).max()) <= peak * 2.0**-11 * 1.01
    assert max_deviation(v, value_options("sum", "float16")) == pytest.approx(float(np.abs(got - ref).max()))


def test_uint8_quantisation_error_at_most_half_a_step() -> None:
    v = _map(3)
    msg = encode_values(v, value_options("abs_sum", "uint8"), pb.Tensor())
    ref = np.abs(v).sum(0, keepdims=True)
    step = (ref.max() - ref.min()) / 255
    assert msg.dtype == pb.DTYPE_UINT8 and msg.scale == pytest.approx(step, rel=1e-6)
    assert msg.offset == pytest.approx(ref.min(), rel=1e-6)
    assert float(np.abs(decode_values(msg) - ref).max()) <= step / 2 * 1.001 + 1e-12


def test_constant_and_zero_maps() -> None:
    for const in (0.0, 0.25):
        v = np.full((1, 4, 4), const, np.float32)
        for kind in ("float16", "uint8"):
            got = decode_values(encode_values(v, value_options("none", kind), pb.Tensor()))
            np.testing.assert_array_equal(got, v)


def test_bad_names_are_refused() -> None:
    with pytest.raises(ValueError, match="reduction"):
        value_options("mean", "float32")
    with pytest.raises(ValueError, match="value type"):
        value_options("sum", "int4")


@pytest.mark.parametrize(
    ("reduction", "value_type"), [("sum", "float16"), ("max_abs", "uint8"), ("none", "float16")]
)
def test_service_answers_the_requested_form(model, card, reduction, value_type) -> None:
    service = ExplainService("tiny", model, card)
    x = np.random.default_rng(7).normal(size=(1, 28, 28)).astype(np.float32)
    plain = build_request(x, methods=["gradient"], target=3, normalized=True)
    compact = build_request(
        x, methods=["gradient"], target=3, normalized=True, reduction=reduction, value_type=value_type
    )
    full, small = service.handle([plain, compact])
    assert full.status.code == pb.OK and small.status.code == pb.OK, small.status.message
    ref = explanation_from_proto(full).heatmaps[0].values  # the served float32 map
    engine = explain(model, torch.from_numpy(x)[None], ["gradient"], [3])["gradient"][0].numpy()
    np.testing.assert_allclose(ref, engine, rtol=0, atol=1e-6)
    got = explanation_from_proto(small).heatmaps[0].values
    reduced = reduce_channels(ref, reduction)
    assert got.shape == reduced.shape and got.dtype == np.float32
    tolerance = max_deviation(ref, value_options(reduction, value_type))
    assert float(np.abs(got - reduced).max()) <= tolerance + 1e-9
    assert tolerance <= float(np.abs(reduced).max()) / 100  # a compact map, not a different one
    assert small.heatmaps[0].values.ByteSize() < full.heatmaps[0].values.ByteSize()


def test_raw_image_headers_set_value_options(digit_png) -> None:
    from xai_serve.errors import InvalidInputError
    from xai_serve.serving.wire import parse_payload

    headers = {"X-Xai-Method": "gradient", "X-Xai-Reduction": "abs_sum", "X-Xai-Value-Type": "uint8"}
    req = parse_payload({"body": digit_png}, "image/png", headers)
    assert (
        req.values.reduction == pb.CHANNEL_REDUCTION_ABS_SUM and req.values.value_type == pb.VALUE_TYPE_UINT8
    )
    with pytest.raises(InvalidInputError, match="reduction"):
        parse_payload({"body": digit_png}, "image/png", {"X-Xai-Reduction": "median"})


def test_filter_image_is_bounded_by_the_iteration_limit(model, card) -> None:
    from xai_serve.serving.limits import CostLimits

    service = ExplainService("tiny", model, card, cost_limits=CostLimits(max_iterations=20))
    x = np.random.default_rng(1).normal(size=(1, 28, 28)).astype(np.float32)
    over = build_request(x, methods={"filter_image": {"iterations": "21"}}, normalized=True)
    under = build_request(x, methods={"filter_image": {"iterations": "2"}}, normalized=True)
    refused, answered = service.handle([over, under])
    assert refused.status.code == pb.RESOURCE_EXHAUSTED and "iterations" in refused.status.message
    assert answered.status.code == pb.OK and answered.heatmaps[0].kind == "image"
    values = explanation_from_proto(answered).heatmaps[0].values
    assert values.min() >= 0 and values.max() <= 1
