"""The batch loop every suite shares: compute missing batches, store each atomically, reload all."""

from __future__ import annotations

import sys
from collections.abc import Callable

import numpy as np
from tqdm import tqdm

from xai_serve.evaluation.context import EvalContext
from xai_serve.evaluation.store import RunDir

BatchFn = Callable[[int, slice], dict[str, np.ndarray]]


def part_name(i: int) -> str:
    return f"batch-{i:05d}"


def run_batches(
    run: RunDir, ctx: EvalContext, batch_size: int, compute: BatchFn, desc: str
) -> list[dict[str, np.ndarray]]:
    """Run ``compute`` on every batch without a stored part; return all parts in batch order."""
    n = ctx.n_batches(batch_size)
    done = sum(run.has_part(part_name(i)) for i in range(n))
    with tqdm(total=n, initial=done, desc=desc, unit="batch", file=sys.stderr, dynamic_ncols=True) as bar:
        for i, sl in ctx.batches(batch_size):
            if run.has_part(part_name(i)):
                continue
            run.save_part(part_name(i), compute(i, sl))
            bar.update(1)
    return [run.load_part(part_name(i)) for i in range(n)]


def concat(parts: list[dict[str, np.ndarray]], key: str, axis: int = 0) -> np.ndarray:
    return np.concatenate([p[key] for p in parts], axis=axis)


def mean_std(v: np.ndarray) -> tuple[float, float]:
    """Mean and population std ignoring NaN (NaN for an empty set)."""
    v = np.asarray(v, dtype=np.float64)
    v = v[~np.isnan(v)]
    if v.size == 0:
        return float("nan"), float("nan")
    return float(v.mean()), float(v.std())
