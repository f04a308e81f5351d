"""Run one registered suite into an output directory: open (or resume) the run, compute, report.

The suite comes from the registry (:mod:`xai_serve.evaluation.registry`). Under ``shard`` only
that slice of the batches is computed (the run directory is shared with the other shards) and
no outputs are assembled; a later unsharded run with ``resume`` merges.
"""

from __future__ import annotations

import os
from dataclasses import asdict
from pathlib import Path
from typing import Any

from xai_serve.atomic import atomic_write_text
from xai_serve.errors import InvalidParameterError
from xai_serve.evaluation.context import EvalContext
from xai_serve.evaluation.registry import get_suite
from xai_serve.evaluation.report import write_report
from xai_serve.jobs.rundir import RunDir
from xai_serve.jobs.shard import Shard, ShardComplete, sharding


def run_config(
    suite: str, ctx: EvalContext, options: Any, seed: int, config: dict[str, Any] | None
) -> dict[str, Any]:
    """What run.json records (and ``--resume`` / shards compare): never the backend or metrics."""
    return {
        **(config or {}),
        "suite": suite,
        "seed": seed,
        "options": asdict(options),
        "methods": list(ctx.attributions),
        "samples": int(ctx.images.shape[0]),
        "sample_indices_head": [int(i) for i in ctx.indices[:16]],
    }


def run_suite(
    suite: str,
    ctx: EvalContext,
    options: Any,
    out: str | os.PathLike[str],
    *,
    seed: int,
    config: dict[str, Any] | None = None,
    resume: bool = False,
    overwrite: bool = False,
    shard: Shard | None = None,
) -> dict[str, Any]:
    """Run ``suite`` on ``ctx`` into ``out``; ``config`` (plus the options and seed) is recorded in
    run.json and must match on ``resume``. Returns the suite's summary (with ``shard``: which
    slice was stored)."""
    spec = get_suite(suite)
    if not isinstance(options, spec.options):
        raise InvalidParameterError(
            f"suite {suite!r} takes {spec.options.__name__}, got {type(options).__name__}"
        )
    full = run_config(suite, ctx, options, seed, config)
    if shard is not None:
        run = RunDir.open_shared(out, full)
    else:
        run = RunDir.open(out, full, resume=resume, overwrite=overwrite)
    try:
        with sharding(shard):
            result = spec.run_function()(ctx, run, options, seed)
    except ShardComplete as done:
        return {"shard": str(done.shard), "parts": done.done}
    verdict_fn = spec.verdict_function()
    verdict = verdict_fn(run.root) if verdict_fn else None
    _model_graph(ctx, run.root)
    write_report(run.root, f"xai evaluate {suite}", verdict=verdict)
    return result


def _model_graph(ctx: EvalContext, root: Path) -> None:
    """model_graph.svg / .png: the layer graph with the names ``layer=`` takes (needs Graphviz)."""
    from xai_serve.export.graph import GraphvizMissingError, render, to_dot

    try:
        render(to_dot(ctx.model, f"model {ctx.info.get('model', '')}".strip()), root / "model_graph")
    except GraphvizMissingError as e:  # the report works without it; say why the graph is missing
        atomic_write_text(root / "model_graph.txt", f"{e}\n")
