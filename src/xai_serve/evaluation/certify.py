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
from xai_serve.hashing import file_sha256


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
    backend: str = "local"  # local | ray (the evaluation jobs' backends)
    address: str | None = None  # Ray cluster address
    workers: int | None = None  # Ray tasks
    shard: str | None = None  # K/N: compute one slice of both suites; merge later with resume


SuiteRunner = Callable[[str, Any, Path], dict[str, Any]]  # (suite, options, out) -> suite result


def certifiable_methods() -> list[str]:
    """Every registered method that produces a heatmap (the ones a credential can describe)."""
    from xai_serve.explain import list_methods

    return sorted(m for m, spec in list_methods().items() if getattr(spec, "output", "heatmap") == "heatmap")


def suite_options(opts: CertifyOptions, input_hw: Sequence[int]) -> tuple[Any, Any, dict[str, Any]]:
    """The randomisation and faithfulness suites' options of a certification, and the plan."""
    from xai_serve.evaluation.suites.faithfulness import FaithfulnessOptions
    from xai_serve.evaluation.suites.randomisation import RandomisationOptions

    plan = cred.faithfulness_plan(input_hw)
    rand = RandomisationOptions(
        modes=["cascading"],
        variant="standard",
        target=opts.target,
        batch_size=opts.batch_size,
        threshold=opts.threshold,
    )
    faith = FaithfulnessOptions(
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
    return rand, faith, plan


def context_runner(
    ctx: Any,
    *,
    seed: int,
    config: dict[str, Any] | None = None,
    resume: bool = False,
    overwrite: bool = False,
) -> SuiteRunner:
    """Run suites in-process on an ``EvalContext`` (any model, any attribution callables)."""
    from xai_serve.evaluation.runner import run_suite

    def run(suite: str, options: Any, out: Path) -> dict[str, Any]:
        return run_suite(
            suite, ctx, options, out, seed=seed, config=config, resume=resume, overwrite=overwrite
        )

    return run


def job_runner(
    checkpoint: str | Path,
    opts: CertifyOptions,
    methods: Sequence[str],
    dataset: str,
    *,
    resume: bool,
    overwrite: bool,
) -> SuiteRunner:
    """Run suites as evaluation jobs on the chosen backend (in-process, ``--shard K/N`` or Ray)."""
    from xai_serve.evaluation.job import run_job
    from xai_serve.evaluation.options import CommonOptions, MethodOptions

    params = [f"{m}.{k}={v}" for m, kv in opts.method_params.items() for k, v in kv.items()]

    def run(suite: str, options: Any, out: Path) -> dict[str, Any]:
        common = CommonOptions(
            checkpoint=str(checkpoint),
            which=opts.which,
            dataset=dataset,
            data_root=opts.data_root,
            split=opts.split,
            samples=opts.samples,
            seed=opts.seed,
            out=str(out),
            resume=resume,
            overwrite=overwrite,
            device=opts.device,
            backend=opts.backend,
            address=opts.address,
            workers=opts.workers,
            shard=opts.shard,
        )
        return run_job(suite, common, MethodOptions(methods=list(methods), param=params or None), options)

    return run


def certify(
    checkpoint: str | Path,
    out: str | Path,
    options: CertifyOptions | None = None,
    *,
    resume: bool = False,
    overwrite: bool = False,
    log: Callable[[str], None] = lambda _msg: None,
) -> Path | None:
    """Run the sanity check and the faithfulness suite for ``checkpoint`` into ``out``; return the
    path of ``out/credentials.json`` (None after a ``shard``: merge with ``resume`` later)."""
    from xai_serve.jobs.rundir import versions
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
    log(f"certify: {len(methods)} methods on {opts.samples} {dataset}/{opts.split} samples, seed {opts.seed}")
    runner = job_runner(ckpt, opts, methods, dataset, resume=resume, overwrite=overwrite)
    measured = measure(runner, out, opts, methods, card.input_shape)
    if measured is None:
        log(f"certify: shard {opts.shard} stored under {out}; run again with --resume to merge")
        return None
    records, meta = measured
    doc = cred.build(
        methods=records,
        rule=rule.describe(),
        config={
            "model": card.model,
            "checkpoint": str(ckpt),
            "which": opts.which,
            "checkpoint_sha256": file_sha256(weights),
            "dataset": dataset,
            "split": opts.split,
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
    run: SuiteRunner,
    out: str | Path,
    opts: CertifyOptions,
    methods: Sequence[str],
    input_hw: Sequence[int],
) -> tuple[dict[str, dict[str, Any]], dict[str, Any]] | None:
    """Run both suites with ``run`` into ``out/randomisation`` and ``out/faithfulness``; return per
    method {"sanity", "faithfulness"} records and what was run (sample count, schedule, plan), or
    None when ``run`` only stored a shard."""
    out = Path(out)
    rule = SanityRule(opts.threshold)
    rand_opts, faith_opts, plan = suite_options(opts, input_hw)
    rand = run("randomisation", rand_opts, out / "randomisation")
    faith = run("faithfulness", faith_opts, out / "faithfulness")
    if "shard" in rand or "shard" in faith:
        return None
    records = {
        m: {
            "sanity": cred.sanity_record(rand["summary"], m, rand["layers"], rule),
            "faithfulness": cred.faithfulness_record(faith["summary"], m, plan["kind"]),
        }
        for m in methods
    }
    meta = {
        "samples": int(rand["n"]),
        "randomisation": {"mode": "cascading", "variant": "standard", "levels": len(rand["layers"])},
        "faithfulness": {**plan, "orders": ["morf", "lerf"], "baseline": "black", "output": "softmax"},
    }
    return records, meta


def credentials_table(summaries: dict[str, dict[str, Any]], doc: dict[str, Any] | None = None) -> str:
    """HTML: the methods' credentials side by side (one column per method), with the rule."""
    import html

    esc = html.escape
    methods = sorted(summaries)

    def cell(m: str, key: str) -> str:
        v = summaries[m].get(key)
        return "—" if v is None or not summaries[m].get("certified") else f"{float(v):.3f}"

    def verdict(m: str) -> str:
        s = summaries[m]
        if not s.get("certified"):
            return '<span class="cred-none">not certified</span>'
        if s.get("sanity_pass"):
            return '<span class="cred-pass">✓ pass</span>'
        return '<span class="cred-fail">✗ fail</span>'

    rows = [
        ("sanity check", verdict),
        ("Spearman |maps|, fully randomised (lower is better)", lambda m: cell(m, "sanity_spearman")),
        ("AOPC MoRF (higher is better)", lambda m: cell(m, "aopc_morf")),
        ("AOPC LeRF (lower is better)", lambda m: cell(m, "aopc_lerf")),
        ("ABPC (higher is better)", lambda m: cell(m, "abpc")),
    ]
    head = "".join(f"<th>{esc(m)}</th>" for m in methods)
    body = "".join(
        f"<tr><th>{esc(label)}</th>" + "".join(f"<td>{fn(m)}</td>" for m in methods) + "</tr>"
        for label, fn in rows
    )
    note = ""
    if doc:
        rule = doc.get("rule", {})
        faith = doc.get("faithfulness", {})
        note = (
            f"<p><small>Rule: {esc(str(rule.get('text', '')))}; threshold {rule.get('threshold')}. "
            f"Measured on {doc.get('samples')} {esc(str(doc.get('dataset')))}/{esc(str(doc.get('split')))} "
            f"images, seed {doc.get('seed')}; faithfulness by {esc(str(faith.get('kind')))} perturbation "
            f"({esc(str(faith.get('baseline')))} baseline). Weights sha256 "
            f"{esc(str(doc.get('checkpoint_sha256', ''))[:12])}…</small></p>"
        )
    style = (
        "<style>.cred-pass{color:#1b9e3c;font-weight:bold}.cred-fail{color:#c81e1e;font-weight:bold}"
        ".cred-none{color:#888}</style>"
    )
    return f'{style}<table class="credentials"><tr><th>credential</th>{head}</tr>{body}</table>{note}'
