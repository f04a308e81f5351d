"""Mutual information between class filter sets (docs/methods.md#decomp-mutual-info).

For every ordered pair of classes ``(a, b)`` *including* ``a = b``, the sets become indicator vectors
``v_a, v_b`` in {0, 1}^D and ``MI(v_a, v_b)`` is the plug-in mutual information of the two label
vectors in nats (what ``sklearn.metrics.mutual_info_score`` computes). Reported: the mean over all
K^2 pairs (as the Decomposing the Deep code: the diagonal ``MI(v, v) = H(v)`` dominates it) and the
mean over the K(K-1) off-diagonal pairs.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np


def indicator(filters: Sequence[int], num_filters: int) -> np.ndarray:
    v = np.zeros(num_filters, dtype=np.int64)
    v[list(filters)] = 1
    return v


def binary_mutual_info(a: np.ndarray, b: np.ndarray) -> float:
    """Plug-in mutual information (nats) of two label vectors of equal length."""
    a, b = np.asarray(a), np.asarray(b)
    if a.shape != b.shape or a.ndim != 1 or a.size == 0:
        raise ValueError("need two non-empty label vectors of equal length")
    n = a.size
    _, ai = np.unique(a, return_inverse=True)
    _, bi = np.unique(b, return_inverse=True)
    joint = np.zeros((ai.max() + 1, bi.max() + 1))
    np.add.at(joint, (ai, bi), 1.0)
    pa, pb = joint.sum(axis=1) / n, joint.sum(axis=0) / n
    total = 0.0
    for i in range(joint.shape[0]):
        for j in range(joint.shape[1]):
            if joint[i, j] > 0:
                p = joint[i, j] / n
                total += p * math.log(p / (pa[i] * pb[j]))
    return max(total, 0.0)


@dataclass(frozen=True)
class MutualInfo:
    mean_all_pairs: float
    mean_off_diagonal: float

    def to_dict(self) -> dict[str, float]:
        return {"mean_all_pairs": self.mean_all_pairs, "mean_off_diagonal": self.mean_off_diagonal}


def pairwise(indices: Sequence[Sequence[int]], num_filters: int) -> np.ndarray:
    """The (K, K) matrix of MI between class sets."""
    vectors = [indicator(s, num_filters) for s in indices]
    k = len(vectors)
    out = np.zeros((k, k))
    for a in range(k):
        for b in range(k):
            out[a, b] = binary_mutual_info(vectors[a], vectors[b])
    return out


def mean_mutual_info(indices: Sequence[Sequence[int]], num_filters: int) -> MutualInfo:
    m = pairwise(indices, num_filters)
    k = m.shape[0]
    off = (m.sum() - np.trace(m)) / (k * (k - 1)) if k > 1 else float("nan")
    return MutualInfo(float(m.mean()), float(off))


def set_size(indices: Sequence[Sequence[int]]) -> str:
    """The ``k`` of an index set: the common set size, or ``var`` when sizes differ (fractional k)."""
    sizes = {len(s) for s in indices}
    return str(sizes.pop()) if len(sizes) == 1 else "var"


def markdown_table(results: dict[str, dict[str, MutualInfo]], *, key: str = "mean_all_pairs") -> str:
    """The Decomposing the Deep code's grid: one column per index set, one row per k (blank where a set
    has no such k)."""
    names = list(results)
    ks = sorted(
        {k for per in results.values() for k in per},
        key=lambda s: (not s.isdigit(), int(s) if s.isdigit() else 0, s),
    )
    lines = ["| k | " + " | ".join(names) + " |", "|---|" + "---|" * len(names)]
    for k in ks:
        cells = [f"{getattr(results[n][k], key):.4f}" if k in results[n] else "" for n in names]
        lines.append(f"| {k} | " + " | ".join(cells) + " |")
    return "\n".join(lines)
