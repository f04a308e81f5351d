"""Run one suite into an output directory: open (or resume) the run, compute, write the report."""

from __future__ import annotations

import os
from dataclasses import asdict
from typing import Any

from xai_serve.errors import InvalidParameterError
from xai_serve.evaluation.context import EvalContext
from xai_serve.evaluation.report import write_report
from xai_serve.evaluation.store import RunDir
from xai_serve.evaluation.suites import (
    SUITES,
    BasicOptions,
    FaithfulnessOptions,
    FeatureRemovalOptions,
    RandomisationOptions,
    run_basic,
    run_faithfulness,
    run_feature_removal,
    run_randomisation,
)

Options = BasicOptions | FaithfulnessOptions | FeatureRemovalOptions | RandomisationOptions


def run_suite(
    suite: str,
    ctx: EvalContext,
    options: Options,
    out: str | os.PathLike[str],
    *,
    seed: int,
    config: dict[str, Any] | None = None,
    resume: bool = False,
    overwrite: bool = False,
) -> dict[str, Any]:
    """Run ``suite`` on ``ctx`` into ``out``; ``config`` (plus the options and seed) is recorded in
    run.json and must match on ``resume``. Returns the suite's summary."""
    if suite not in SUITES:
        raise InvalidParameterError(f"suite must be one of {', '.join(SUITES)}; got {suite!r}")
    full = {
        **(config or {}),
        "suite": suite,
        "seed": seed,
        "options": asdict(options),
        "methods": list(ctx.attributions),
        "samples": int(ctx.images.shape[0]),
        "sample_indices_head": [int(i) for i in ctx.indices[:16]],
    }
    run = RunDir.open(out, full, resume=resume, overwrite=overwrite)
    if suite == "basic":
        assert isinstance(options, BasicOptions)
        result = run_basic(ctx, run, options)
    elif suite == "faithfulness":
        assert isinstance(options, FaithfulnessOptions)
        result = run_faithfulness(ctx, run, options, seed)
    elif suite == "feature-removal":
        assert isinstance(options, FeatureRemovalOptions)
        result = run_feature_removal(ctx, run, options, seed)
    else:
        assert isinstance(options, RandomisationOptions)
        result = run_randomisation(ctx, run, options, seed)
    write_report(run.root, f"xai evaluate {suite}")
    return result
