"""``--backend ray``: a job's shards as Ray tasks (``ray`` is imported only here).

Each task computes one shard ``K/N`` of the job's parts and stores every part atomically in the
job's output directory (which every node must see: one machine, or a shared volume); a task that
dies (worker killed, node lost) is retried by Ray and skips the parts already stored. The caller
then merges locally, exactly as after an in-process run, so the outputs are byte-identical.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from xai_serve.errors import XaiError
from xai_serve.jobs.shard import Shard

MAX_RETRIES = 3  # Ray retries a task whose worker died this many times


def cluster_cpus() -> int:
    import ray

    return max(1, int(ray.cluster_resources().get("CPU", 1)))


def run_shards(
    task: Callable[..., Any],
    args: Sequence[Any],
    n_parts: int,
    *,
    address: str | None = None,
    workers: int | None = None,
) -> list[Any]:
    """Run ``task(*args, shard)`` for every shard ``K/N`` on Ray and return the results in shard order.

    ``N`` is ``workers`` or the cluster's CPU count, at most ``n_parts``. Connects to ``address``
    (``ray://``, ``host:port`` or ``auto``) or, when Ray is not initialised and no address is
    given, starts a local Ray for the duration of the call.
    """
    try:
        import ray
    except ImportError as e:  # pragma: no cover - ray is a dependency
        raise XaiError("--backend ray needs the `ray` package") from e
    started = False
    if not ray.is_initialized():
        ray.init(address=address, include_dashboard=False, log_to_driver=False)
        started = True
    try:
        n = max(1, min(n_parts, workers or cluster_cpus()))
        remote = ray.remote(num_cpus=1, max_retries=MAX_RETRIES)(task)
        refs = [remote.remote(*args, Shard(k, n)) for k in range(n)]
        return list(ray.get(refs))
    finally:
        if started:
            ray.shutdown()
