"""Compact heatmap values (``ExplainRequest.values``): channel reduction and value type.

One copy of the knowledge, used by the server to encode ``Heatmap.values`` and by the client to read
them back:

* reduction over the channel axis (axis 0 of ``[C, H, W]``; the axis is kept, size 1):
  ``none``, ``sum`` (Σ_c v), ``abs_sum`` (Σ_c |v|), ``max_abs`` (max_c |v|);
* value type: ``float32`` (as computed); ``float16`` (values divided by ``scale = max|v|`` so they
  lie in [-1, 1], where float16 keeps a relative precision of 2^-11 and neither overflows nor
  underflows; value = data * scale); ``uint8`` (linear quantisation ``data = round((v - offset) /
  scale)`` with ``offset = min v``, ``scale = (max v - min v) / 255``; the error is at most scale / 2).

:func:`decode_values` returns float32 numpy arrays with ``scale`` / ``offset`` applied (``scale == 0``
and ``offset == 0`` mean "unset": the data are the values).
"""

from __future__ import annotations

import numpy as np

from xai_client.api.v1 import explain_pb2 as pb
from xai_client.tensors import from_proto, to_proto

REDUCTIONS: dict[str, int] = {
    "none": pb.CHANNEL_REDUCTION_NONE,
    "sum": pb.CHANNEL_REDUCTION_SUM,
    "abs_sum": pb.CHANNEL_REDUCTION_ABS_SUM,
    "max_abs": pb.CHANNEL_REDUCTION_MAX_ABS,
}
VALUE_TYPES: dict[str, int] = {
    "float32": pb.VALUE_TYPE_FLOAT32,
    "float16": pb.VALUE_TYPE_FLOAT16,
    "uint8": pb.VALUE_TYPE_UINT8,
}


def value_options(reduction: str = "none", value_type: str = "float32") -> pb.ValueOptions:
    """A ValueOptions message from names (ValueError listing the choices otherwise)."""
    if reduction not in REDUCTIONS:
        raise ValueError(f"reduction {reduction!r} is not one of {', '.join(REDUCTIONS)}")
    if value_type not in VALUE_TYPES:
        raise ValueError(f"value type {value_type!r} is not one of {', '.join(VALUE_TYPES)}")
    return pb.ValueOptions(reduction=REDUCTIONS[reduction], value_type=VALUE_TYPES[value_type])  # type: ignore[arg-type]


def reduce_channels(values: np.ndarray, reduction: int | str) -> np.ndarray:
    """``values`` ([C, ...]) reduced over axis 0 (kept with size 1); ``none`` returns them unchanged."""
    code = REDUCTIONS[reduction] if isinstance(reduction, str) else int(reduction)
    if code in (pb.CHANNEL_REDUCTION_UNSPECIFIED, pb.CHANNEL_REDUCTION_NONE):
        return values
    if values.ndim < 2:
        raise ValueError(f"channel reduction needs values shaped [C, ...], got {list(values.shape)}")
    if code == pb.CHANNEL_REDUCTION_SUM:
        return values.sum(axis=0, keepdims=True, dtype=np.float64).astype(np.float32)
    if code == pb.CHANNEL_REDUCTION_ABS_SUM:
        return np.abs(values).sum(axis=0, keepdims=True, dtype=np.float64).astype(np.float32)
    if code == pb.CHANNEL_REDUCTION_MAX_ABS:
        return np.abs(values).max(axis=0, keepdims=True).astype(np.float32)
    raise ValueError(f"unknown channel reduction {code}")


def encode_values(values: np.ndarray, options: pb.ValueOptions, out: pb.Tensor) -> pb.Tensor:
    """Write ``values`` (finite floats, [C, H, W]) into ``out`` in the form ``options`` asks for."""
    v = reduce_channels(np.asarray(values, dtype=np.float32), options.reduction)
    kind = options.value_type
    if kind in (pb.VALUE_TYPE_UNSPECIFIED, pb.VALUE_TYPE_FLOAT32):
        return to_proto(np.ascontiguousarray(v, dtype=np.float32), out)
    if kind == pb.VALUE_TYPE_FLOAT16:
        peak = float(np.abs(v).max()) if v.size else 0.0
        scale = peak if peak > 0 else 0.0
        data = (v / np.float32(scale)) if scale else v
        to_proto(data.astype(np.float16), out)
        out.scale = scale
        return out
    if kind == pb.VALUE_TYPE_UINT8:
        low, high = (float(v.min()), float(v.max())) if v.size else (0.0, 0.0)
        scale = (high - low) / 255.0 if high > low else 1.0  # constant map: data 0, value = offset
        data = np.clip(np.rint((v.astype(np.float64) - low) / scale), 0, 255).astype(np.uint8)
        to_proto(data, out)
        out.scale, out.offset = scale, low
        return out
    raise ValueError(f"unknown value type {kind}")


def decode_values(msg: pb.Tensor, *, max_elements: int | None = None) -> np.ndarray:
    """The values of a Tensor message as float32 with ``scale`` / ``offset`` applied (when set)."""
    data = from_proto(msg, max_elements=max_elements)
    if msg.scale == 0 and msg.offset == 0:
        return data if data.dtype == np.float32 else data.astype(np.float32)
    return (data.astype(np.float32) * np.float32(msg.scale) + np.float32(msg.offset)).astype(np.float32)


def max_deviation(values: np.ndarray, options: pb.ValueOptions) -> float:
    """max |decoded - reduced float32| of ``values`` sent with ``options`` (the figure the bench states)."""
    reference = reduce_channels(np.asarray(values, dtype=np.float32), options.reduction)
    decoded = decode_values(encode_values(values, options, pb.Tensor()))
    return float(np.abs(decoded.astype(np.float64) - reference).max()) if reference.size else 0.0
