"""numpy arrays <-> ``xai_serve.v1.Tensor`` (little-endian, C order)."""

from __future__ import annotations

import math

import numpy as np

from xai_client.api.v1 import explain_pb2 as pb

_TO_NUMPY: dict[int, np.dtype] = {
    pb.DTYPE_FLOAT32: np.dtype("<f4"),
    pb.DTYPE_FLOAT64: np.dtype("<f8"),
    pb.DTYPE_FLOAT16: np.dtype("<f2"),
    pb.DTYPE_UINT8: np.dtype("u1"),
}
_FROM_NUMPY: dict[str, int] = {
    "float32": pb.DTYPE_FLOAT32,
    "float64": pb.DTYPE_FLOAT64,
    "float16": pb.DTYPE_FLOAT16,
    "uint8": pb.DTYPE_UINT8,
}


def to_proto(array: np.ndarray, out: pb.Tensor | None = None) -> pb.Tensor:
    """Encode ``array`` (float32/float64/float16/uint8) into a Tensor message."""
    array = np.asarray(array)
    dtype = _FROM_NUMPY.get(array.dtype.name)
    if dtype is None:
        raise ValueError(f"unsupported dtype {array.dtype}; use one of {sorted(_FROM_NUMPY)}")
    msg = out if out is not None else pb.Tensor()
    msg.dtype = dtype  # type: ignore[assignment]
    del msg.shape[:]
    msg.shape.extend(int(s) for s in array.shape)
    msg.data = np.ascontiguousarray(array, dtype=_TO_NUMPY[dtype]).tobytes()
    return msg


def from_proto(msg: pb.Tensor, *, max_elements: int | None = None) -> np.ndarray:
    """Decode a Tensor message; ValueError names what is inconsistent (dtype, shape, byte count)."""
    dtype = _TO_NUMPY.get(msg.dtype)
    if dtype is None:
        raise ValueError(
            f"tensor dtype {pb.DType.Name(msg.dtype) if msg.dtype in pb.DType.values() else msg.dtype} "
            "is not supported (float32, float64, float16, uint8)"
        )
    shape = [int(s) for s in msg.shape]
    if not shape or any(s <= 0 for s in shape):
        raise ValueError(f"tensor shape {shape} must be non-empty with positive sizes")
    count = math.prod(shape)
    if max_elements is not None and count > max_elements:
        raise ValueError(f"tensor has {count} elements, more than the limit {max_elements}")
    if len(msg.data) != count * dtype.itemsize:
        raise ValueError(
            f"tensor data has {len(msg.data)} bytes; shape {shape} of {dtype.name} needs "
            f"{count * dtype.itemsize}"
        )
    return np.frombuffer(msg.data, dtype=dtype).reshape(shape)
