"""What the client returns: plain dataclasses holding numpy arrays (no protobuf types leak out)."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

import numpy as np

from xai_client.api.v1 import explain_pb2 as pb
from xai_client.tensors import from_proto
from xai_client.values import decode_values


@dataclass(frozen=True)
class ClassScore:
    index: int
    label: str
    probability: float
    logit: float


@dataclass(frozen=True)
class Prediction:
    top: list[ClassScore]
    # a model with several outputs (the General Pattern Theory ResGPTNet): each per-pixel output's predicted
    # map (arg-max channel per pixel, uint8 [H, W]) by output name, e.g. {"yg": ..., "ys": ...}
    outputs: dict[str, np.ndarray] = field(default_factory=dict)

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
class Credential:
    """How far a method can be trusted on this model (the archive's ``credentials.json``).

    ``sanity_pass``: the cascading weight-randomisation sanity check passed (Spearman of the fully
    randomised model's absolute maps below the archive's threshold); ``sanity_spearman`` is that
    correlation; ``aopc_morf`` / ``aopc_lerf`` / ``abpc``: faithfulness scores (MoRF AOPC and ABPC:
    higher is better). Scores are None when the method is not certified.
    """

    certified: bool
    sanity_pass: bool
    sanity_spearman: float | None = None
    aopc_morf: float | None = None
    aopc_lerf: float | None = None
    abpc: float | None = None

    @property
    def badge(self) -> bool | None:
        """True (passed), False (failed) or None (not certified): what the overlay badge shows."""
        return self.sanity_pass if self.certified else None


def credential_from_proto(msg: pb.Credential) -> Credential:
    """Scores of an uncertified method are None (the wire's doubles have no presence: the server
    sends 0 for a score that was not measurable)."""
    if not msg.certified:
        return Credential(False, False)
    return Credential(True, msg.sanity_pass, msg.sanity_spearman, msg.aopc_morf, msg.aopc_lerf, msg.abpc)


def credential_from_dict(d: dict) -> Credential:
    """From the ``summary`` entries of the describe call's ``credentials``."""
    return Credential(
        bool(d.get("certified", False)),
        bool(d.get("sanity_pass", False)),
        *(
            None if d.get(k) is None else float(d[k])
            for k in ("sanity_spearman", "aopc_morf", "aopc_lerf", "abpc")
        ),
    )


@dataclass(frozen=True)
class FilterEvidence:
    """One filter of the ``decomposed`` method: its index, its contribution ``W[c, f] * h_f`` to the class
    logit and its activation map upsampled to the input (float32 [H, W])."""

    filter: int
    contribution: float
    map: np.ndarray


def filters_from_proto(items: Iterable[pb.FilterEvidence]) -> list[FilterEvidence]:
    return [FilterEvidence(int(f.filter), float(f.contribution), from_proto(f.map)) for f in items]


@dataclass(frozen=True)
class UnitEvidence:
    """A unit of a dissected layer contributing to the explanation, with the concept formula that best
    explains where it fires (``xai dissect``) and that formula's IoU. ``contribution`` depends on the
    method: Grad-CAM's channel weight x mean activation at the layer; ``decomposed``: W[c, k] * h_k;
    ``layer_guided_backprop``: the explained filter's sum |A_f|."""

    layer: str
    unit: int
    contribution: float
    formula: str
    iou: float

    def __str__(self) -> str:
        return f"unit {self.unit} `{self.formula}` (IoU {self.iou:.2f})"


def units_from_proto(items: Iterable[pb.UnitEvidence]) -> list[UnitEvidence]:
    return [UnitEvidence(u.layer, int(u.unit), float(u.contribution), u.formula, float(u.iou)) for u in items]


@dataclass(frozen=True)
class Heatmap:
    method: str
    target: int
    values: np.ndarray | None  # float32, shaped like the model input for kind "heatmap"
    png: bytes | None
    signed: bool
    kind: str
    stats: dict[str, float] = field(default_factory=dict)
    credential: Credential | None = None  # None: the archive carries no credentials
    # the `decomposed` method: filters, largest contribution first (stats: logit, bias, others)
    filters: list[FilterEvidence] = field(default_factory=list)
    # archives with a dissection (`xai archive --dissection`): the dissected layer's top units, largest
    # contribution first, with their concept formulas
    units: list[UnitEvidence] = field(default_factory=list)
    # a component target (General Pattern Theory): which scalar was explained; ``target`` is then its channel
    component: Component | None = None
    # the module a layer method used (Grad-CAM's default: the last layer larger than 1x1)
    layer: str = ""

    @property
    def concepts(self) -> str:
        """One line: ``class 3 because of unit 12 `(stripes OR dots) AND NOT grass` (IoU 0.21), ...``."""
        if not self.units:
            return ""
        return f"class {self.target} because of " + ", ".join(str(u) for u in self.units)

    @property
    def filter_indices(self) -> np.ndarray:
        """int64 [n]: the listed filters (``decomposed`` method)."""
        return np.array([f.filter for f in self.filters], dtype=np.int64)

    @property
    def filter_contributions(self) -> np.ndarray:
        """float64 [n]: their contributions; with ``stats`` bias and others they sum to the logit."""
        return np.array([f.contribution for f in self.filters], dtype=np.float64)

    @property
    def filter_maps(self) -> np.ndarray:
        """float32 [n, H, W]: their activation maps upsampled to the input."""
        if not self.filters:
            return np.zeros((0, 0, 0), dtype=np.float32)
        return np.stack([f.map for f in self.filters]).astype(np.float32, copy=False)


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


@dataclass(frozen=True)
class Component:
    """The explained scalar of a component target: ``output[channel, row, col]`` (channel resolved)."""

    output: str
    row: int
    col: int
    channel: int

    def __str__(self) -> str:
        return f"{self.output}:{self.row},{self.col}:{self.channel}"


def prediction_from_proto(msg: pb.Prediction) -> Prediction:
    outputs = {o.name: from_proto(o.tensor) for o in msg.outputs}
    return Prediction([ClassScore(s.index, s.label, s.probability, s.logit) for s in msg.top], outputs)


def explanation_from_proto(msg: pb.ExplainResponse) -> Explanation:
    heatmaps = [
        Heatmap(
            method=h.method,
            target=h.target,
            values=decode_values(h.values) if h.HasField("values") else None,
            png=h.png or None,
            signed=h.signed,
            kind=h.kind or "heatmap",
            stats=dict(h.stats),
            credential=credential_from_proto(h.credential) if h.HasField("credential") else None,
            filters=filters_from_proto(h.filters),
            units=units_from_proto(h.units),
            component=Component(h.component.output, h.component.row, h.component.col, h.component.channel)
            if h.HasField("component")
            else None,
            layer=h.layer,
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
