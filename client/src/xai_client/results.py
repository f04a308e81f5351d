"""What the client returns: plain dataclasses holding numpy arrays (no protobuf types leak out)."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from xai_client.api.v1 import explain_pb2 as pb
from xai_client.tensors import from_proto


@dataclass(frozen=True)
class ClassScore:
    index: int
    label: str
    probability: float
    logit: float


@dataclass(frozen=True)
class Prediction:
    top: list[ClassScore]

    @property
    def index(self) -> int:
        return self.top[0].index

    @property
    def label(self) -> str:
        return self.top[0].label

    @property
    def probability(self) -> float:
        return self.top[0].probability


@dataclass(frozen=True)
class Heatmap:
    method: str
    target: int
    values: np.ndarray | None  # float32, shaped like the model input for kind "heatmap"
    png: bytes | None
    signed: bool
    kind: str
    stats: dict[str, float] = field(default_factory=dict)


@dataclass(frozen=True)
class Explanation:
    model: str
    prediction: Prediction
    heatmaps: list[Heatmap]
    timings: dict[str, float]
    request_id: str = ""

    def heatmap(self, method: str, target: int | None = None) -> Heatmap:
        """The heatmap of ``method`` (for ``target`` when several classes were explained)."""
        for h in self.heatmaps:
            if h.method == method and (target is None or h.target == target):
                return h
        raise KeyError(
            f"no heatmap for method {method!r}" + (f" target {target}" if target is not None else "")
        )


def prediction_from_proto(msg: pb.Prediction) -> Prediction:
    return Prediction([ClassScore(s.index, s.label, s.probability, s.logit) for s in msg.top])


def explanation_from_proto(msg: pb.ExplainResponse) -> Explanation:
    heatmaps = [
        Heatmap(
            method=h.method,
            target=h.target,
            values=from_proto(h.values) if h.HasField("values") else None,
            png=h.png or None,
            signed=h.signed,
            kind=h.kind or "heatmap",
            stats=dict(h.stats),
        )
        for h in msg.heatmaps
    ]
    t = msg.timings
    timings = {
        "decode_ms": t.decode_ms,
        "predict_ms": t.predict_ms,
        "explain_ms": t.explain_ms,
        "encode_ms": t.encode_ms,
        "total_ms": t.total_ms,
        "batch_size": float(t.batch_size),
    }
    return Explanation(msg.model, prediction_from_proto(msg.prediction), heatmaps, timings, msg.request_id)
