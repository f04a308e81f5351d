"""Concept-labelled unit evidence for served explanations (``Heatmap.units``).

An archive built with ``xai archive ... --dissection RESULTS.csv`` carries the dissection of one
layer (``dissection.csv``: unit -> formula, IoU). For every heatmap of the methods below, the server
then lists the ``top`` units of that layer that contribute most to the explanation, each with its
formula and IoU, so a reader sees "class 3 because of unit 12 `(stripes OR dots) AND NOT grass`
(IoU 0.21), ...". The contributions come from the method itself, when its explainer has the
:class:`~xai_serve.explain.units.UnitContributions` capability:

* ``gradcam``, ``guided_gradcam``: Grad-CAM's channel weight times the channel's mean activation,
  ``mean_hw(d y_c / d A_k) * mean_hw(A_k)``, computed at the dissected layer for the explained class
  (the units' shares of the spatial mean of the un-ReLU'd CAM at that layer; they sum to it).
* ``decomposed``: the method's own filter contributions ``W[c, k] * h_k`` (they sum, with the bias and
  the unlisted filters, to the class logit) when its layer is the dissected one.
* ``layer_guided_backprop``: the method explains one filter, not a class: that filter is listed, with
  the method's objective ``sum_hw |A_f|`` as its contribution, when its layer is the dissected one.

Methods without the capability get no unit evidence.

Units are listed largest contribution first (positive contributions only); units without a formula
(IoU 0, ``NONE``) are listed with formula ``NONE``.
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from xai_serve.dissection.report import read_results
from xai_serve.errors import InvalidArgumentError, NonFiniteResultError
from xai_serve.explain.context import ModelContext
from xai_serve.explain.registry import method_class
from xai_serve.explain.units import UnitContributions

FILE_NAME = "dissection.csv"  # inside an archive
TOP_UNITS = 5


@dataclass(frozen=True)
class UnitLabel:
    formula: str
    iou: float


class Dissection:
    """A dissection result of one layer: ``labels[unit]``."""

    def __init__(self, layer: str, labels: dict[int, UnitLabel], top: int = TOP_UNITS) -> None:
        self.layer = layer
        self.labels = labels
        self.top = top

    @classmethod
    def load(cls, path: str | Path, top: int = TOP_UNITS) -> Dissection:
        rows = read_results(path)
        layers = {r["layer"] for r in rows}
        if len(layers) != 1:
            raise InvalidArgumentError(
                f"{path} holds several layers ({sorted(layers)}); give one layer's results"
            )
        labels = {r["unit"]: UnitLabel(r["formula"], r["iou"]) for r in rows}
        if any(not np.isfinite(v.iou) for v in labels.values()):
            raise InvalidArgumentError(f"{path} has a non-finite IoU")
        return cls(layers.pop(), labels, top)

    def check_model(self, model: Any) -> None:
        """The dissected layer must be a module of ``model`` with one channel per dissected unit or more."""
        modules = dict(model.named_modules())
        if self.layer not in modules:
            raise InvalidArgumentError(
                f"the dissection is of layer {self.layer!r}, which the model does not have"
            )

    def fill(
        self,
        h: Any,
        req: Any,
        model: Any,
        x: Any,
        target: int,
        method: str,
        result: Any,
        j: int,
        *,
        context: ModelContext,
    ) -> None:
        """Add ``UnitEvidence`` entries to the wire ``Heatmap`` ``h`` of request ``req`` from row ``j`` of
        ``result``, the attribution of ``method`` for input ``x`` and class ``target`` (a no-op for a
        method without the :class:`~xai_serve.explain.units.UnitContributions` capability)."""
        cls = method_class(method)
        if not issubclass(cls, UnitContributions):
            return
        params = next((dict(m.params) for m in req.methods if m.name == method), {})
        explainer = cls(model, context=context, **params)
        rows = explainer.unit_contributions(x, target, self.layer, result, j)
        if rows is None or rows.size == 0:
            return
        if not np.isfinite(rows).all():
            raise NonFiniteResultError(f"method {method!r}: non-finite unit contributions; not served")
        order = np.lexsort((rows[:, 0], -rows[:, 1]))
        for unit, value in rows[order][: self.top]:
            if value <= 0:
                break
            label = self.labels.get(int(unit), UnitLabel("NONE", 0.0))
            h.units.add(
                layer=self.layer,
                unit=int(unit),
                contribution=float(value),
                formula=label.formula,
                iou=float(label.iou),
            )


def attach(results_csv: str | Path, work: Path, model: Any | None = None) -> Path:
    """Validate ``results_csv`` (and its layer against ``model``) and copy it into an archive's work
    folder as ``dissection.csv``; returns the copy."""
    dissection = Dissection.load(results_csv)
    if model is not None:
        dissection.check_model(model)
    target = work / FILE_NAME
    shutil.copyfile(results_csv, target)
    return target


def load_served(model_dir: str | Path, model: Any) -> Dissection | None:
    """The archive's dissection (None when it carries none)."""
    path = Path(model_dir) / FILE_NAME
    if not path.is_file():
        return None
    dissection = Dissection.load(path)
    dissection.check_model(model)
    return dissection
