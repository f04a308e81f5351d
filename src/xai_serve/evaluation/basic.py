"""Basic classifier metrics (suite ``basic``): accuracy and per-class precision / recall / F1.

The General Pattern Theory code (docs/methods.md#gpt-pixel-metrics) called its metric function with
swapped arguments, so
its column labelled *precision* holds recall and the one labelled *recall* holds precision.
``seed_parity=True`` reproduces those labels (and adds ``precision_true`` / ``recall_true``
with the correct values); by default the columns carry their correct names.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
from sklearn.metrics import precision_recall_fscore_support

PER_CLASS_COLUMNS = ("class", "label", "precision", "recall", "f1", "support")


def per_class_metrics(
    y_true: Sequence[int] | np.ndarray,
    y_pred: Sequence[int] | np.ndarray,
    labels: Sequence[str],
    *,
    seed_parity: bool = False,
) -> list[dict[str, Any]]:
    """One row per class: precision, recall, F1 (0 where undefined) and support."""
    classes = list(range(len(labels)))
    p, r, f, s = precision_recall_fscore_support(
        np.asarray(y_true), np.asarray(y_pred), labels=classes, zero_division=0
    )
    rows = []
    for c in classes:
        row: dict[str, Any] = {"class": c, "label": labels[c]}
        if seed_parity:
            row.update(precision=float(r[c]), recall=float(p[c]))
            row.update(precision_true=float(p[c]), recall_true=float(r[c]))
        else:
            row.update(precision=float(p[c]), recall=float(r[c]))
        row.update(f1=float(f[c]), support=int(s[c]))
        rows.append(row)
    return rows


def summary(rows: list[dict[str, Any]], accuracy: float) -> list[dict[str, Any]]:
    """Rows ``mean`` and ``std`` (population std, ``np.var ** 0.5`` as the General Pattern Theory code) over
    the classes."""
    cols = [k for k in rows[0] if k not in ("class", "label", "support")]
    out: list[dict[str, Any]] = []
    for stat in ("mean", "std"):
        row: dict[str, Any] = {"stat": stat, "accuracy": accuracy if stat == "mean" else None}
        for k in cols:
            v = np.array([r[k] for r in rows], dtype=np.float64)
            row[k] = float(v.mean()) if stat == "mean" else float(v.var() ** 0.5)
        out.append(row)
    return out


def accuracy(y_true: Sequence[int] | np.ndarray, y_pred: Sequence[int] | np.ndarray) -> float:
    t, p = np.asarray(y_true), np.asarray(y_pred)
    return float((t == p).mean()) if t.size else float("nan")
