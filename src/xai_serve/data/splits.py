"""Deterministic, seeded dataset splits."""

from __future__ import annotations

import numpy as np


def stratified_split(
    labels: np.ndarray, fractions: tuple[float, float, float], seed: int
) -> dict[str, np.ndarray]:
    """Split indices into ``train``/``val``/``test`` with the given fractions, keeping every class in
    the same proportion in each part (per class: seeded permutation, then proportional cut).
    Returns sorted index arrays; the same ``labels`` and ``seed`` always give the same split."""
    rng = np.random.default_rng(seed)
    parts: dict[str, list[np.ndarray]] = {"train": [], "val": [], "test": []}
    for cls in np.unique(labels):
        idx = rng.permutation(np.flatnonzero(labels == cls))
        n_test = round(fractions[2] * len(idx))
        n_val = round(fractions[1] * len(idx))
        parts["test"].append(idx[:n_test])
        parts["val"].append(idx[n_test : n_test + n_val])
        parts["train"].append(idx[n_test + n_val :])
    return {k: np.sort(np.concatenate(v)) for k, v in parts.items()}


def holdout_split(n: int, val_fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Seeded random ``(train, val)`` index split of ``range(n)`` (the val part has ``round(f*n)``)."""
    perm = np.random.default_rng(seed).permutation(n)
    n_val = round(val_fraction * n)
    return np.sort(perm[n_val:]), np.sort(perm[:n_val])
