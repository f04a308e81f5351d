"""A straightforward dense-numpy implementation of the same beam search (docs/methods.md#compexp-algorithm),
for tests and as the benchmark's baseline: every mask is a boolean (N, H, W) array, every candidate formula's
mask is built explicitly (``f | l``, ``f & l``, ``f & ~l``) and counted with ``np.count_nonzero``."""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from xai_serve.dissection import formula as fm

EPS = 1e-10


def dense_iou(a: np.ndarray, b: np.ndarray) -> float:
    inter = np.count_nonzero(a & b)
    return float(inter / (np.count_nonzero(a) + np.count_nonzero(b) - inter + EPS))


def dense_best_formula(
    unit: np.ndarray,
    concepts: Mapping[str, np.ndarray] | list[np.ndarray],
    max_length: int = 3,
    beam: int = 5,
    penalty: float = 1.0,
    names: list[str] | None = None,
) -> tuple[str, float]:
    """Same contract as :func:`xai_serve.dissection.best_formula`, dense masks throughout."""
    if isinstance(concepts, Mapping):
        names = list(concepts)
        masks = [np.asarray(concepts[n], bool) for n in names]
    else:
        masks = list(concepts)
        names = names or [str(i) for i in range(len(masks))]
    unit = np.asarray(unit, bool)
    singles = [dense_iou(unit, m) for m in masks]
    cands = [i for i, m in enumerate(masks) if np.any(m[unit.reshape(unit.shape[0], -1).any(axis=1)])]
    ranked = sorted((i for i, v in enumerate(singles) if v > 0), key=lambda i: -singles[i])[:beam]
    if not ranked:
        return fm.NONE, 0.0
    # formula -> (score, iou, mask), insertion-ordered
    current: dict[fm.Formula, tuple[float, float, np.ndarray]] = {
        fm.leaf(i): (singles[i], singles[i], masks[i]) for i in ranked
    }
    for _ in range(max_length - 1):
        new: dict[fm.Formula, tuple[float, float, np.ndarray]] = {}
        for f, (_, _, fmask) in current.items():
            for c in cands:
                for op in fm.OPS:
                    g = fm.combine(op, f, c)
                    if op == "OR":
                        gmask = fmask | masks[c]
                    elif op == "AND":
                        gmask = fmask & masks[c]
                    else:
                        gmask = fmask & ~masks[c]
                    v = dense_iou(unit, gmask)
                    new.setdefault(g, (v * penalty ** (fm.length(g) - 1), v, gmask))
        merged = dict(current)
        for g, item in new.items():
            merged.setdefault(g, item)
        order = sorted(enumerate(merged.items()), key=lambda t: (-t[1][1][0], t[0]))
        current = dict(item for _, item in order[:beam])
    best, (_, best_iou, _) = next(iter(current.items()))
    return fm.to_string(best, names), best_iou
