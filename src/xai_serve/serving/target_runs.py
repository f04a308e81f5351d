"""Rows that repeat one input with several class targets (a ``topK`` request gives K rows of its input):
found here so that the engine explains them with one forward pass
(:func:`~xai_serve.explain.explain_targets`) instead of K."""

from __future__ import annotations

from typing import Any

import torch


def target_runs(x: torch.Tensor, target: Any) -> tuple[torch.Tensor, list[list[int]]] | None:
    """``(inputs, classes)`` when the rows of ``x`` are runs of K > 1 equal inputs (every run the same
    length) and ``target`` a list of class indices, one per row; None otherwise."""
    if not isinstance(target, list | tuple) or len(target) != x.shape[0] or x.shape[0] < 2:
        return None
    if any(isinstance(t, bool) or not isinstance(t, int) for t in target):
        return None
    starts = [0] + [i for i in range(1, x.shape[0]) if not torch.equal(x[i], x[i - 1])]
    k_count = x.shape[0] // len(starts)
    if (
        k_count < 2
        or any(s != j * k_count for j, s in enumerate(starts))
        or k_count * len(starts) != x.shape[0]
    ):
        return None
    classes = [list(target[s : s + k_count]) for s in starts]
    return x[starts], classes
