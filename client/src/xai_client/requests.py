"""Building an ``ExplainRequest`` from Python values (paths, bytes, numpy arrays, method names)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np

from xai_client.api.v1 import explain_pb2 as pb
from xai_client.targets import OUTPUT_FORMS, TargetLike, parse_output_form, parse_target
from xai_client.tensors import to_proto
from xai_client.values import value_options

__all__ = ["OUTPUT_FORMS", "TargetLike", "build_request", "normalise_methods", "set_input", "set_target"]

ImageLike = str | Path | bytes | np.ndarray
Methods = str | Sequence[str] | Mapping[str, Mapping[str, object]]


def set_input(msg: pb.Input, image: ImageLike, *, normalized: bool = False) -> None:
    """Encoded file (path or bytes) or a raw array ([C,H,W], [H,W] or [1,C,H,W])."""
    if isinstance(image, (str, Path)):
        msg.encoded = Path(image).read_bytes()
    elif isinstance(image, (bytes, bytearray)):
        msg.encoded = bytes(image)
    else:
        to_proto(np.asarray(image), msg.tensor)
        msg.normalized = normalized


def set_target(msg: pb.Target, target: TargetLike) -> None:
    """Set ``msg`` from ``target`` in the one target grammar (:mod:`xai_client.targets`)."""
    msg.CopyFrom(parse_target(target))


def normalise_methods(methods: Methods | None) -> dict[str, dict[str, str]]:
    if methods is None:
        return {}
    if isinstance(methods, str):
        return {methods: {}}
    if isinstance(methods, Mapping):
        return {
            name: {k: _param_text(v) for k, v in (params or {}).items()} for name, params in methods.items()
        }
    return {name: {} for name in methods}


def _param_text(value: object) -> str:
    if isinstance(value, (list, tuple)):
        return ",".join(str(v) for v in value)
    return str(value)


def build_request(
    image: ImageLike,
    *,
    methods: Methods | None = None,
    target: TargetLike = None,
    output: str = "tensor",
    top_k: int = 0,
    normalized: bool = False,
    request_id: str = "",
    reduction: str = "none",
    value_type: str = "float32",
) -> pb.ExplainRequest:
    """An ExplainRequest; ``methods=None`` asks for a prediction only. ``reduction`` / ``value_type``:
    the form of the heatmap values (:mod:`xai_client.values`)."""
    req = pb.ExplainRequest(top_k=top_k, request_id=request_id)
    set_input(req.input, image, normalized=normalized)
    for name, params in normalise_methods(methods).items():
        req.methods.add(name=name, params=params)
    set_target(req.target, target)
    req.output = parse_output_form(output)
    if (reduction, value_type) != ("none", "float32"):
        req.values.CopyFrom(value_options(reduction, value_type))
    return req
