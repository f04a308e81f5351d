"""Deterministic, seeded dataset splits."""

from __future__ import annotations

from typing import TYPE_CHECKING, TypeVar

import numpy as np

from xai_serve.errors import InvalidParameterError

if TYPE_CHECKING:
    from torch.utils.data import Dataset

T = TypeVar("T")


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


def holdout_subset(full: Dataset[T], part: str, val_fraction: float, seed: int) -> Dataset[T]:
    """The ``train`` or ``val`` part of ``full`` under the seeded :func:`holdout_split` (for data sets
    that ship no validation split: the same ``full``, fraction and seed always give the same part)."""
    from torch.utils.data import Subset

    if part not in ("train", "val"):
        raise InvalidParameterError(f"a holdout part is train or val, got {part!r}")
    train_idx, val_idx = holdout_split(len(full), val_fraction, seed)  # type: ignore[arg-type]
    return Subset(full, (train_idx if part == "train" else val_idx).tolist())
