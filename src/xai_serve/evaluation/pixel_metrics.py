"""Per-sample pixel metrics of a predicted class map against its ground truth (0 = background), as
General Pattern Theory (Tjoa & Guan) scores the ``yg`` / ``ys`` maps of ResGPTNet
(docs/methods.md#gpt-pixel-metrics).

:func:`one_sample_metrics` is the original code's ``compute_one_sample_basic_metrics(y, y0)`` with ``y`` the
prediction and ``y0`` the ground truth (0 = background)::

    TP = sum (y>0)(y0>0)(y==y0);  TN = sum (y==0)(y0==0)
    FP = sum (y>0)(y0==0) + sum (y>0)(y0>0)(y!=y0);  FN = sum (y==0)(y0>0)
    acc = mean(y==y0); precision = TP/(TP+FP) if TP>0 else 0; recall = TP/(TP+FN) if TP>0 else 0

The original code called it as ``(ground truth, prediction)``, so its *precision* column is really a recall
(TP over TP + missed + wrong-class) and its *recall* column a precision (TP over TP + false alarms).
:func:`pixel_metrics` gives the correct values by default and the original's labels with
``seed_parity=True`` (then ``precision_true`` / ``recall_true`` carry the correct ones).
"""

from __future__ import annotations

from typing import Any

import numpy as np


def one_sample_metrics(y: np.ndarray, y0: np.ndarray) -> dict[str, float]:
    """acc / precision / recall of prediction ``y`` against truth ``y0`` (any equal shapes)."""
    y, y0 = np.asarray(y).reshape(-1), np.asarray(y0).reshape(-1)
    pos, pos0 = y > 0, y0 > 0
    tp = int((pos & pos0 & (y == y0)).sum())
    fp = int((pos & ~pos0).sum()) + int((pos & pos0 & (y != y0)).sum())
    fn = int((~pos & pos0).sum())
    return {
        "acc": float((y == y0).mean()),
        "precision": tp / (tp + fp) if tp > 0 else 0.0,
        "recall": tp / (tp + fn) if tp > 0 else 0.0,
    }


def pixel_metrics(truth: np.ndarray, pred: np.ndarray, *, seed_parity: bool = False) -> dict[str, Any]:
    """The metrics of one sample's predicted map ``pred`` against ``truth`` (see the module doc)."""
    correct = one_sample_metrics(pred, truth)
    if not seed_parity:
        return correct
    seed = one_sample_metrics(truth, pred)  # the original code's swapped call
    return {**seed, "precision_true": correct["precision"], "recall_true": correct["recall"]}


def summarise(rows: list[dict[str, float]]) -> dict[str, dict[str, float]]:
    """``{"mean": ..., "std": ...}`` per column (population std, ``np.var ** 0.5`` as the original)."""
    if not rows:
        return {"mean": {}, "std": {}}
    cols = list(rows[0])
    arr = {c: np.array([r[c] for r in rows], dtype=np.float64) for c in cols}
    return {
        "mean": {c: float(v.mean()) for c, v in arr.items()},
        "std": {c: float(v.var() ** 0.5) for c, v in arr.items()},
    }
