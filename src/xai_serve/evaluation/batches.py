"""The batch loop every suite shares: compute missing batches, store each atomically, reload all."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

import numpy as np

from xai_serve.jobs.metrics import current_metrics
from xai_serve.jobs.progress import progress
from xai_serve.jobs.rundir import RunDir
from xai_serve.jobs.shard import ShardComplete, current_shard

if TYPE_CHECKING:
    from xai_serve.evaluation.context import EvalContext

BatchFn = Callable[[int, slice], dict[str, np.ndarray]]


def part_name(i: int) -> str:
    return f"batch-{i:05d}"


def run_batches(
    run: RunDir, ctx: EvalContext, batch_size: int, compute: BatchFn, desc: str
) -> list[dict[str, np.ndarray]]:
    """Run ``compute`` on every batch without a stored part; return all parts in batch order.

    Under an active ``--shard K/N`` (:func:`xai_serve.jobs.shard.sharding`) only the shard's batches
    are computed, then :class:`~xai_serve.jobs.shard.ShardComplete` is raised (the merge run
    assembles the outputs). Progress goes to the active job metrics, if any.
    """
    shard = current_shard()
    metrics = current_metrics()
    n = ctx.n_batches(batch_size)
    mine = [(i, sl) for i, sl in ctx.batches(batch_size) if shard is None or shard.owns(i)]
    stored = [run.has_part(part_name(i)) for i, _ in mine]
    if metrics is not None:
        metrics.start(
            total=sum(sl.stop - sl.start for _, sl in mine),
            done=sum(sl.stop - sl.start for (_, sl), s in zip(mine, stored, strict=True) if s),
        )
    with progress(total=len(mine), initial=sum(stored), desc=desc, unit="batch") as bar:
        for (i, sl), done in zip(mine, stored, strict=True):
            if done or run.has_part(part_name(i)):
                continue
            try:
                arrays = compute(i, sl)
            except Exception:
                if metrics is not None:
                    metrics.failure()
                raise
            run.save_part(part_name(i), arrays)
            bar.update(1)
            if metrics is not None:
                metrics.advance(sl.stop - sl.start)
    if shard is not None:
        raise ShardComplete(shard, len(mine))
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
