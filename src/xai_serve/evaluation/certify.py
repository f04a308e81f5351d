"""``xai certify``: measure the explanation credentials of a checkpoint (see ``credentials``).

For every method the archive will serve (by default every registered heatmap method), on the
model's validation data, with the existing evaluation runner (batched, atomic parts, resumable):

1. the ``randomisation`` suite, cascading mode, standard schedule (every parameterised layer
   re-initialised top-down): the documented sanity rule of ``sanity_rule`` decides pass / fail on
   the fully randomised level;
2. the ``faithfulness`` suite, MoRF and LeRF, pixel flipping for small inputs or region
   perturbation for large ones (``credentials.faithfulness_plan``): AOPC MoRF, AOPC LeRF, ABPC.

Both runs live under ``OUT/randomisation`` and ``OUT/faithfulness`` (each with its report.html);
``OUT/credentials.json`` is written last, atomically. ``--resume`` continues both runs.
"""

from __future__ import annotations

import datetime as _dt
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from xai_serve.errors import InvalidParameterError
from xai_serve.evaluation import credentials as cred
from xai_serve.evaluation.sanity_rule import SANITY_THRESHOLD, SanityRule


@dataclass
class CertifyOptions:
    methods: Sequence[str] | None = None  # None: every registered heatmap method
    method_params: dict[str, dict[str, Any]] = field(default_factory=dict)
    samples: int = 32
    seed: int = 0
    dataset: str | None = None  # None: the model card's dataset
    split: str = "val"
    data_root: str | None = None
    which: str = "best"
    threshold: float = SANITY_THRESHOLD
    target: str = "true"
    batch_size: int = 16
    forward_batch: int = 2048
    device: str = "cpu"


def certifiable_methods() -> list[str]:
    """Every registered method that produces a heatmap (the ones a credential can describe)."""
    from xai_serve.explain import list_methods

    return sorted(m for m, spec in list_methods().items() if getattr(spec, "output", "heatmap") == "heatmap")


def certify(
    checkpoint: str | Path,
    out: str | Path,
    options: CertifyOptions | None = None,
    *,
    resume: bool = False,
    overwrite: bool = False,
    log: Callable[[str], None] = lambda _msg: None,
) -> Path:
    """Run the sanity check and the faithfulness suite for ``checkpoint`` into ``out``; return the
    path of ``out/credentials.json``."""
    from xai_serve.evaluation.context import EvalContext
    from xai_serve.evaluation.store import versions
    from xai_serve.models import ModelCard
    from xai_serve.models.checkpoint import WEIGHT_FILES

    opts = options or CertifyOptions()
    rule = SanityRule(opts.threshold)
    ckpt, out = Path(checkpoint), Path(out)
    card = ModelCard.load(ckpt / "model.json")
    if opts.which not in WEIGHT_FILES:
        raise InvalidParameterError(f"which must be one of {', '.join(WEIGHT_FILES)}; got {opts.which!r}")
    weights = ckpt / WEIGHT_FILES[opts.which]
    methods = list(opts.methods) if opts.methods else certifiable_methods()
    if not methods:
        raise InvalidParameterError("certify needs at least one method")
    dataset = opts.dataset or card.dataset
    ctx = EvalContext.from_checkpoint(
        str(ckpt),
        which=opts.which,
        dataset=dataset,
        split=opts.split,
        samples=opts.samples,
        seed=opts.seed,
        methods=methods,
        method_params=opts.method_params,
        device=opts.device,
        root=opts.data_root,
    )
    config = {
        "checkpoint": str(ckpt),
        "which": opts.which,
        "dataset": dataset,
        "split": opts.split,
        "data_root": opts.data_root,
        "device": opts.device,
        "method_params": opts.method_params,
        "purpose": "xai certify",
    }
    records, meta = measure(ctx, out, opts, config=config, resume=resume, overwrite=overwrite, log=log)
    doc = cred.build(
        methods=records,
        rule=rule.describe(),
        config={
            "model": card.model,
            "checkpoint": str(ckpt),
            "which": opts.which,
            "checkpoint_sha256": cred.file_sha256(weights),
            "dataset": dataset,
            "split": opts.split,
            "samples": int(ctx.images.shape[0]),
            "seed": opts.seed,
            "target": opts.target,
            "method_params": opts.method_params,
            **meta,
            "created": _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds"),
        },
        versions=versions(),
    )
    path = cred.write(out / cred.FILE_NAME, doc)
    for m in methods:
        s = cred.summary(doc, m)
        log(
            f"  {m:<22} sanity {'PASS' if s['sanity_pass'] else 'FAIL'} "
            f"(spearman {s.get('sanity_spearman', float('nan')):.3f})  AOPC MoRF "
            f"{s.get('aopc_morf', float('nan')):.3f}  LeRF {s.get('aopc_lerf', float('nan')):.3f}  "
            f"ABPC {s.get('abpc', float('nan')):.3f}"
        )
    return path


def measure(
    ctx: Any,
    out: str | Path,
    opts: CertifyOptions,
    *,
    config: dict[str, Any] | None = None,
    resume: bool = False,
    overwrite: bool = False,
    log: Callable[[str], None] = lambda _msg: None,
) -> tuple[dict[str, dict[str, Any]], dict[str, Any]]:
    """Run both suites on ``ctx`` (an ``EvalContext``: model, samples, attribution callables) into
    ``out/randomisation`` and ``out/faithfulness``; return per method {"sanity", "faithfulness"}
    records and what was run (the schedule, the perturbation plan)."""
    from xai_serve.evaluation.runner import run_suite
    from xai_serve.evaluation.suites import FaithfulnessOptions, RandomisationOptions

    out = Path(out)
    rule = SanityRule(opts.threshold)
    plan = cred.faithfulness_plan(ctx.images.shape)
    log(f"certify: {len(ctx.attributions)} methods on {ctx.images.shape[0]} samples, seed {opts.seed}")
    rand = run_suite(
        "randomisation",
        ctx,
        RandomisationOptions(
            modes=["cascading"], variant="standard", target=opts.target, batch_size=opts.batch_size
        ),
        out / "randomisation",
        seed=opts.seed,
        config=config,
        resume=resume,
        overwrite=overwrite,
    )
    faith_opts = FaithfulnessOptions(
        kinds=[plan["kind"]],
        orders=["morf", "lerf"],
        baseline="black",
        features_in_step=int(plan.get("features_in_step", 1)),
        patch_size=int(plan.get("patch_size", 4)),
        region_steps=plan.get("region_steps"),
        output="softmax",
        target=opts.target,
        batch_size=opts.batch_size,
        forward_batch=opts.forward_batch,
    )
    faith = run_suite(
        "faithfulness",
        ctx,
        faith_opts,
        out / "faithfulness",
        seed=opts.seed,
        config=config,
        resume=resume,
        overwrite=overwrite,
    )
    records = {
        m: {
            "sanity": cred.sanity_record(rand["summary"], m, rand["layers"], rule),
            "faithfulness": cred.faithfulness_record(faith["summary"], m, plan["kind"]),
        }
        for m in ctx.attributions
    }
    meta = {
        "randomisation": {"mode": "cascading", "variant": "standard", "levels": len(rand["layers"])},
        "faithfulness": {**plan, "orders": ["morf", "lerf"], "baseline": "black", "output": "softmax"},
    }
    return records, meta
