"""Building an ``ExplainRequest`` from Python values (paths, bytes, numpy arrays, method names)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np

from xai_client.api.v1 import explain_pb2 as pb
from xai_client.tensors import to_proto

ImageLike = str | Path | bytes | np.ndarray
Methods = str | Sequence[str] | Mapping[str, Mapping[str, object]]
TargetLike = int | str | None

OUTPUTS = {"tensor": pb.OUTPUT_FORM_TENSOR, "png": pb.OUTPUT_FORM_PNG, "both": pb.OUTPUT_FORM_BOTH}


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
    """``int`` class index, ``"predicted"`` / None, or ``"top3"`` / ``"top-3"`` for the top-k classes."""
    if target is None or target == "predicted":
        msg.predicted = True
    elif isinstance(target, (int, np.integer)) or (isinstance(target, str) and target.lstrip("-").isdigit()):
        msg.class_index = int(target)
    elif isinstance(target, str) and target.lower().startswith("top"):
        msg.top_k = int(target[3:].lstrip("-_:") or 1)
    else:
        raise ValueError(f"target must be a class index, 'predicted' or 'topK', not {target!r}")


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
) -> pb.ExplainRequest:
    """An ExplainRequest; ``methods=None`` asks for a prediction only."""
    req = pb.ExplainRequest(top_k=top_k, request_id=request_id)
    set_input(req.input, image, normalized=normalized)
    for name, params in normalise_methods(methods).items():
        req.methods.add(name=name, params=params)
    set_target(req.target, target)
    if output not in OUTPUTS:
        raise ValueError(f"output must be one of {sorted(OUTPUTS)}, not {output!r}")
    req.output = OUTPUTS[output]
    return req
