"""``xai dissect run --backend ray``: the unit-range parts of a dissection as Ray tasks.

The driver opens the run and prepares it once (activations, thresholds, concept store); each Ray
task then runs one shard ``K/N`` of the missing parts (:func:`~xai_serve.dissection.runner.dissect`
with ``shard``: every part is written atomically, so a retried task skips the finished ones), and
the driver merges, as after an in-process run: the outputs are identical.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

from xai_serve.jobs.ray_backend import run_shards
from xai_serve.jobs.shard import Shard


def _shard_task(out: str, config: Any, shard: Shard) -> int:
    from xai_serve.dissection.runner import dissect

    os.environ.setdefault("OMP_NUM_THREADS", "1")
    dissect(out, config, shard=shard, log=lambda _m: None)
    return shard.index


def dissect_on_ray(
    out: str | os.PathLike[str],
    config: Any,
    *,
    address: str | None = None,
    workers: int | None = None,
    overwrite: bool = False,
    log: Callable[[str], None] = print,
) -> dict[str, Any]:
    """Dissect with the parts on Ray (``address`` or a local Ray); returns the merged summary."""
    from xai_serve.dissection import activations as acts
    from xai_serve.dissection.layout import part_ranges
    from xai_serve.dissection.runner import merge, open_run, prepare

    out = Path(out)
    open_run(out, config, overwrite=overwrite)
    prepare(out, config, log)
    n_units = int(json.loads((out / acts.ACTIVATIONS_META).read_text())["shape"][1])
    n_parts = len(part_ranges(n_units, config.units_per_part))
    log(f"{n_units} units in {n_parts} part(s) on Ray")
    run_shards(_shard_task, (str(out), config), n_parts, address=address, workers=workers)
    return merge(out)
