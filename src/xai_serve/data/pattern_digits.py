"""``pattern_digits``: the General Pattern Theory code's synthetic pattern-theory digits
(docs/methods.md#gpt-data), no download.

Each 28x28 image of class ``c`` is grown from a few class-specific seed generators by
:func:`~xai_serve.data.pattern_growth.develop`, binarised and rotated (scipy spline order 3, so grey
values with a slight over/undershoot). A sample is ``x`` (1, 28, 28) float (not normalised: the bundle's
mean/std are 0/1), ``y`` the class, and the seed board's targets ``yg`` (28, 28) generator type - 1
(0 = background, 1 = seed generator) and ``ys`` (28, 28) group element - 1, which mark only the seed
pixels (not the grown board), as in the original.

Randomness comes from a ``numpy.random.Generator``; the draws follow the original's order (rotation,
growth time, x/y translation, then the class table's extra offsets). Splits are drawn from disjoint
seed sequences: ``SeedSequence(seed, spawn_key=(split index,))``; each split has a default size
(``size`` overrides it). ``class_probs`` (10 weights) draws classes non-uniformly (the original's NICE2
fine-tuning); otherwise classes are uniform.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from functools import lru_cache

import numpy as np
import torch
from scipy.ndimage import rotate

from xai_serve.data import pattern_growth as pg
from xai_serve.data.bundle import SPLITS, DatasetBundle, TensorImageDataset
from xai_serve.data.registry import register_dataset
from xai_serve.errors import InvalidParameterError

LABELS = [str(i) for i in range(10)]
OUTPUTS = ("y", "yg", "ys")
DEFAULT_SIZES = {"train": 6000, "val": 1000, "test": 1000}
#: Number of seed generators each class places (the class table's placements).
SEEDS_PER_CLASS = (1, 1, 2, 3, 3, 3, 4, 4, 4, 5)


def _seed(i: int, k: int) -> int:
    return int(pg.code(i, k))  # generator type i (always 2, the seed generator) under group element k


def class_seeds(c: int, rng: np.random.Generator) -> tuple[np.ndarray, int, float]:
    """The seed board of one class-``c`` sample, its growth time and its rotation (degrees)."""
    seeds = np.ones((pg.L, pg.L), dtype=np.int64)
    deg = float(rng.uniform(-10, 10))
    t = int(rng.integers(8, 12))
    tx = int(rng.integers(-1, 2))
    ty = int(rng.integers(-2, 3))
    if c == 0:
        x, y = 7 + tx, 14 + ty
        seeds[y, x] = _seed(2, 3)
    elif c == 1:
        x, y = 14 + tx, 7 + ty
        seeds[y, x] = _seed(2, 5)
    elif c == 2:
        t += 1
        x, y = 8 + tx, 14 + ty
        seeds[y, x] = _seed(2, 2)
        seeds[8 + ty, 13 + tx] = _seed(2, 4)
    elif c == 3:
        x, y = 8 + tx, 18 + ty
        seeds[y - 2, x] = _seed(2, 2)
        seeds[y - t, x + t] = _seed(2, 5)
        seeds[y - 1, x] = _seed(2, 3)
    elif c == 4:
        x, y = 8 + tx, 8 + ty
        seeds[y, x] = _seed(2, 3)
        seeds[y + 8, x + 2] = _seed(2, 1)
        seeds[y + 2, x + 6 + int(rng.integers(0, 3))] = _seed(2, 5)
    elif c == 5:
        x, y = 8 + tx, 10 + ty
        p = int(rng.integers(6, 10))
        seeds[y, x + 3] = _seed(2, 3)
        seeds[y + p, x] = _seed(2, 3)
        seeds[y + p + 1, x + int(0.5 * t)] = _seed(2, 1)
    elif c == 6:
        x, y = 7 + tx, 6 + ty
        p = int(rng.integers(0, 3))
        seeds[y, x] = _seed(2, 3)
        seeds[y, x + 5 + p] = _seed(2, 4)
        seeds[y + t, x + 6 + p] = _seed(2, 2)
        seeds[y + 8, x + p] = _seed(2, 1)
    elif c == 7:
        x, y = 3 + tx, 6 + ty
        t -= 2
        p = int(rng.integers(0, 3))
        seeds[y, x] = _seed(2, 3)
        seeds[y, x + 5 + p] = _seed(2, 4)
        seeds[y, x + 5 + p + int(rng.integers(7, 9))] = _seed(2, 5)
        seeds[y + 8, x + p] = _seed(2, 1)
    elif c == 8:
        x, y = 7 + tx, 8 + ty
        p = int(rng.integers(0, 3))
        seeds[y, x + 2] = _seed(2, 3)
        seeds[y + 11 + p, x + 9] = _seed(2, 7)
        seeds[y + 6, x + 7] = _seed(2, 8)
        seeds[y + 11 + p, x] = _seed(2, 2)
    elif c == 9:
        t = 8
        x, y = 7 + tx, 14 + ty
        seeds[y + int(rng.integers(0, 2)), x + 1] = _seed(2, 3)
        seeds[y + 1, x] = _seed(2, 4)
        seeds[y - 1, x] = _seed(2, 2)
        seeds[y, x + t + 2] = _seed(2, 6)
        seeds[y - 1, x + t] = _seed(2, 8)
    else:
        raise InvalidParameterError(f"pattern_digits has classes 0..9, not {c}")
    return seeds, t, deg


def render(board: np.ndarray, deg: float) -> np.ndarray:
    """The grown board as an image: foreground where the code is > 1, rotated by ``deg`` degrees.

    Near-zero rotations (|deg| < 2) first go through a +5/-5 degree round trip, as in the original, so every
    image carries the spline's grey edges.
    """
    img = ((board - 1) > 0).astype(float)
    if abs(deg) < 2:
        img = rotate(rotate(img, 5, reshape=False), -5, reshape=False)
    return rotate(img, deg, reshape=False)


def sample(c: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """One sample of class ``c``: (image (28,28) float, seed board, yg (28,28), ys (28,28))."""
    seeds, t, deg = class_seeds(c, rng)
    board = pg.develop(t, seeds)
    i, k = pg.decode(seeds)
    return render(board, deg), seeds, i - 1, k - 1


def sample_batch(
    classes: Sequence[int], rng: np.random.Generator
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """The original code's ``get_sample_batch``: x (N,1,28,28) float, y (N,), yg, ys (N,28,28) long.

    Equal to calling :func:`sample` for each class in turn (same draws, same order); the growth runs
    vectorised over the batch."""
    n = len(classes)
    seeds = np.ones((n, pg.L, pg.L), dtype=np.int64)
    t = np.zeros(n, dtype=np.int64)
    deg = np.zeros(n)
    for j, c in enumerate(classes):
        seeds[j], t[j], deg[j] = class_seeds(int(c), rng)
    boards = pg.develop_batch(t, seeds)
    images = [render(boards[j], float(deg[j])) for j in range(n)]
    x = torch.from_numpy(np.stack(images) if n else np.zeros((0, pg.L, pg.L))).float().unsqueeze(1)
    i, k = pg.decode(seeds)
    y = torch.tensor([int(c) for c in classes], dtype=torch.long)
    return x, y, torch.from_numpy(i - 1), torch.from_numpy(k - 1)


class PatternDigitsDataset(TensorImageDataset):
    """Images and classes like every dataset (``(x, label)``), plus the seed-board targets.

    ``yg``/``ys`` (N, 28, 28) are the per-pixel targets of the model's ``yg``/``ys`` outputs;
    :meth:`with_components` is the view yielding ``(x, (y, yg, ys))`` for multi-output training.
    """

    def __init__(self, images: torch.Tensor, targets: torch.Tensor, yg: torch.Tensor, ys: torch.Tensor):
        super().__init__(images, targets)
        self.yg = yg
        self.ys = ys

    def with_components(self) -> ComponentView:
        return ComponentView(self)


class ComponentView(torch.utils.data.Dataset[tuple[torch.Tensor, tuple[int, torch.Tensor, torch.Tensor]]]):
    def __init__(self, base: PatternDigitsDataset) -> None:
        self.base = base

    def __len__(self) -> int:
        return len(self.base)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, tuple[int, torch.Tensor, torch.Tensor]]:
        b = self.base
        return b.images[index], (int(b.targets[index]), b.yg[index], b.ys[index])


def split_rng(split: str, seed: int) -> np.random.Generator:
    """The generator of ``split``: disjoint seed sequences per split (spawn key = split index)."""
    return np.random.default_rng(np.random.SeedSequence(seed, spawn_key=(SPLITS.index(split),)))


@lru_cache(maxsize=8)
def _generate(
    split: str, seed: int, size: int, class_probs: tuple[float, ...] | None
) -> PatternDigitsDataset:
    rng = split_rng(split, seed)
    if class_probs is None:
        classes = rng.integers(0, 10, size=size)
    else:
        p = np.asarray(class_probs, dtype=float)
        classes = rng.choice(10, size=size, p=p / p.sum())
    x, y, yg, ys = sample_batch([int(c) for c in classes], rng)
    return PatternDigitsDataset(x, y, yg, ys)


@register_dataset("pattern_digits")
def load_pattern_digits(
    split: str,
    *,
    root: str | os.PathLike[str] | None = None,
    seed: int = 0,
    channels: int | None = None,
    size: int | Mapping[str, int] = 0,
    class_probs: Sequence[float] | None = None,
) -> DatasetBundle:
    """``size`` samples (0 = the split's default; a mapping gives one size per split) of ``split``,
    generated from ``seed``."""
    if isinstance(size, Mapping):
        unknown = set(size) - set(SPLITS)
        if unknown:
            raise InvalidParameterError(f"size names unknown splits: {', '.join(sorted(unknown))}")
        size = int(size.get(split, 0))
    if channels not in (None, 1):
        raise InvalidParameterError(f"pattern_digits has 1 channel, not {channels}")
    if size < 0:
        raise InvalidParameterError(f"size must be >= 0, got {size}")
    probs = None
    if class_probs is not None:
        probs = tuple(float(v) for v in class_probs)
        if len(probs) != 10 or min(probs) < 0 or sum(probs) <= 0:
            raise InvalidParameterError("class_probs must hold 10 non-negative weights with a positive sum")
    dataset = _generate(split, int(seed), int(size or DEFAULT_SIZES[split]), probs)
    return DatasetBundle(
        name="pattern_digits",
        split=split,
        dataset=dataset,
        mean=[0.0],
        std=[1.0],
        labels=list(LABELS),
        input_shape=[1, pg.L, pg.L],
    )
