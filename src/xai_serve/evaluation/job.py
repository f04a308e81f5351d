"""One evaluation job from its options: build the context, pick the backend, report progress.

Backends: ``local`` (in-process), ``local`` with ``--shard K/N`` (one slice; merge later with
``--resume``), ``ray`` (every shard as a Ray task, then the local merge). The merge is always the
same code (the suite's assembly over the stored parts in batch order), so the outputs of every
backend are byte-identical for the same options (with deterministic kernels at a fixed thread
count: Ray tasks run with one thread, as ``OMP_NUM_THREADS=1`` does locally).
"""

from __future__ import annotations

from dataclasses import asdict
from pathlib import Path
from typing import Any

from xai_serve.evaluation.options import CommonOptions, MethodOptions
from xai_serve.evaluation.registry import get_suite
from xai_serve.jobs.shard import Shard

CONFIG_KEYS = ("checkpoint", "which", "dataset", "split", "data_root", "device")


def output_dir(suite: str, common: CommonOptions) -> str:
    return common.out or str(Path("eval") / suite)


def metrics_path(common: CommonOptions, shard: Shard | None) -> str | None:
    """The textfile-collector file of this process (one per shard: ``NAME-shard-K-of-N.prom``)."""
    if not common.metrics_file or shard is None:
        return common.metrics_file
    p = Path(common.metrics_file)
    return str(p.with_name(f"{p.stem}-shard-{shard.index}-of-{shard.count}{p.suffix}"))


def _context(suite: str, common: CommonOptions, methods: MethodOptions | None) -> tuple[Any, dict[str, Any]]:
    from xai_serve.evaluation.context import EvalContext

    params = methods.method_params() if methods else {}
    ctx = EvalContext.from_checkpoint(
        common.checkpoint,
        which=common.which,
        dataset=common.dataset,
        split=common.split,
        samples=common.samples,
        seed=common.seed,
        methods=methods.methods if methods else [],
        method_params=params,
        device=common.device,
        root=common.data_root,
    )
    config = {k: getattr(common, k) for k in CONFIG_KEYS}
    config["dataset"] = ctx.info["dataset"]  # the card's when not given
    config["method_params"] = params
    return ctx, config


def _run_local(
    suite: str, common: CommonOptions, methods: MethodOptions | None, options: Any, shard: Shard | None
) -> dict[str, Any]:
    from xai_serve.evaluation.runner import run_suite
    from xai_serve.jobs.metrics import JobMetrics, reporting

    ctx, config = _context(suite, common, methods)
    out = output_dir(suite, common)
    metrics = JobMetrics(
        suite, str(shard) if shard else "all", metrics_path(common, shard), common.pushgateway
    )
    with reporting(metrics):
        return run_suite(
            suite,
            ctx,
            options,
            out,
            seed=common.seed,
            config=config,
            resume=common.resume,
            overwrite=common.overwrite,
            shard=shard,
        )


def shard_task(
    suite: str, common: dict[str, Any], methods: dict[str, Any] | None, options: Any, shard: Shard
) -> dict[str, Any]:
    """One Ray task: compute ``shard`` of the job's batches into the shared output directory."""
    import torch

    torch.set_num_threads(1)
    return _run_local(
        suite, CommonOptions(**common), MethodOptions(**methods) if methods else None, options, shard
    )


def run_job(suite: str, common: CommonOptions, methods: MethodOptions | None, options: Any) -> dict[str, Any]:
    """Run ``suite`` with the command's options on the chosen backend; returns the suite's summary."""
    common.validate()
    spec = get_suite(suite)
    if not spec.uses_methods:
        methods = None
    if common.backend == "local":
        return _run_local(
            suite, common, methods, options, Shard.parse(common.shard) if common.shard else None
        )

    from xai_serve.evaluation.runner import run_config
    from xai_serve.jobs.ray_backend import run_shards
    from xai_serve.jobs.rundir import RunDir

    ctx, config = _context(suite, common, methods)
    out = output_dir(suite, common)
    full = run_config(suite, ctx, options, common.seed, config)
    RunDir.open(out, full, resume=common.resume, overwrite=common.overwrite)  # created once, by the driver
    n_parts = ctx.n_batches(options.batch_size)
    task_common = {**asdict(common), "backend": "local", "shard": None, "resume": True, "overwrite": False}
    run_shards(
        shard_task,
        (suite, task_common, asdict(methods) if methods else None, options),
        n_parts,
        address=common.address,
        workers=common.workers,
    )
    merge = CommonOptions(
        **{**task_common, "metrics_file": common.metrics_file, "pushgateway": common.pushgateway}
    )
    return _run_local(suite, merge, methods, options, None)
