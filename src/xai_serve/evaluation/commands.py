"""``xai evaluate SUITE``: the offline evaluation runner's CLI (torch is imported lazily).

Suites: ``basic``, ``faithfulness``, ``feature-removal``, ``randomisation``. Each takes the methods
to compare (any registered explainer), the number of samples, a seed, the data set and the
checkpoint, and writes CSV/JSON, PNG plots and report.html to ``--out`` (resumable with --resume).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated, Any

import typer

from xai_serve.errors import InvalidParameterError, XaiError

evaluate_app = typer.Typer(
    help="Evaluate a model and its explanations: basic metrics, faithfulness curves (pixel flipping, "
    "region perturbation, AOPC/AUC/ABPC), feature removal, parameter-randomisation sanity checks.",
    no_args_is_help=True,
)

DEFAULT_CHECKPOINT = "runs/digits_simplenet"
DEFAULT_METHODS = "gradient,input_x_gradient,guided_backprop"

Checkpoint = Annotated[str, typer.Option(help="checkpoint directory written by `xai train`")]
Which = Annotated[str, typer.Option(help="weights to load: best | last")]
Dataset = Annotated[str, typer.Option(help="registered dataset name (digits, mnist, cifar10, imagefolder)")]
DataRoot = Annotated[str | None, typer.Option(help="dataset root folder (for local datasets)")]
Split = Annotated[str, typer.Option(help="dataset split")]
Methods = Annotated[str, typer.Option(help="comma-separated registered explanation methods")]
Params = Annotated[
    list[str] | None, typer.Option("--param", help="method parameter METHOD.KEY=VALUE (repeatable)")
]
Seed = Annotated[int, typer.Option(help="seed of the sample choice and every random draw")]
Out = Annotated[str | None, typer.Option(help="output directory (default eval/<suite>)")]
Resume = Annotated[bool, typer.Option(help="continue an interrupted run in --out")]
Overwrite = Annotated[bool, typer.Option(help="replace an existing run in --out")]
Device = Annotated[str, typer.Option(help="torch device (cpu, cuda)")]
Target = Annotated[str, typer.Option(help="class explained and scored: true | predicted")]


def _split(s: str) -> list[str]:
    return [p.strip() for p in s.split(",") if p.strip()]


def _method_params(items: list[str] | None) -> dict[str, dict[str, Any]]:
    out: dict[str, dict[str, Any]] = {}
    for item in items or []:
        key, sep, value = item.partition("=")
        method, dot, name = key.partition(".")
        if not sep or not dot or not method or not name:
            raise InvalidParameterError(f"--param expects METHOD.KEY=VALUE, got {item!r}")
        out.setdefault(method, {})[name] = value
    return out


def _run(suite: str, common: dict[str, Any], options: Any, methods: list[str]) -> None:
    from xai_serve.evaluation.context import EvalContext
    from xai_serve.evaluation.runner import run_suite

    try:
        params = _method_params(common["param"])
        ctx = EvalContext.from_checkpoint(
            common["checkpoint"],
            which=common["which"],
            dataset=common["dataset"],
            split=common["split"],
            samples=common["samples"],
            seed=common["seed"],
            methods=methods,
            method_params=params,
            device=common["device"],
            root=common["data_root"],
        )
        out = common["out"] or str(Path("eval") / suite)
        config = {k: common[k] for k in ("checkpoint", "which", "dataset", "split", "data_root", "device")}
        config["method_params"] = params
        result = run_suite(
            suite,
            ctx,
            options,
            out,
            seed=common["seed"],
            config=config,
            resume=common["resume"],
            overwrite=common["overwrite"],
        )
    except XaiError as e:
        typer.echo(f"error: {e}", err=True)
        raise typer.Exit(2) from e
    brief = {k: v for k, v in result.items() if k != "summary"}
    typer.echo(json.dumps({"out": out, **brief}))
    typer.echo(f"report: {Path(out) / 'report.html'}", err=True)


def _common(**kw: Any) -> dict[str, Any]:
    return kw


@evaluate_app.command("basic")
def basic(
    checkpoint: Checkpoint = DEFAULT_CHECKPOINT,
    which: Which = "best",
    dataset: Dataset = "digits",
    data_root: DataRoot = None,
    split: Split = "test",
    samples: Annotated[int | None, typer.Option(help="number of samples (default: all)")] = None,
    seed: Seed = 0,
    out: Out = None,
    resume: Resume = False,
    overwrite: Overwrite = False,
    device: Device = "cpu",
    seed_parity: Annotated[
        bool, typer.Option(help="seed A's swapped precision/recall column labels")
    ] = False,
    batch_size: Annotated[int, typer.Option(help="images per batch")] = 256,
) -> None:
    """Accuracy, per-class precision/recall/F1 (basic.csv, basic_summary.csv), predictions."""
    from xai_serve.evaluation.suites import BasicOptions

    common = _common(
        checkpoint=checkpoint,
        which=which,
        dataset=dataset,
        data_root=data_root,
        split=split,
        samples=samples,
        seed=seed,
        out=out,
        resume=resume,
        overwrite=overwrite,
        device=device,
        param=None,
    )
    _run("basic", common, BasicOptions(seed_parity=seed_parity, batch_size=batch_size), [])


@evaluate_app.command("faithfulness")
def faithfulness(
    checkpoint: Checkpoint = DEFAULT_CHECKPOINT,
    which: Which = "best",
    dataset: Dataset = "digits",
    data_root: DataRoot = None,
    split: Split = "test",
    methods: Methods = DEFAULT_METHODS,
    param: Params = None,
    samples: Annotated[int | None, typer.Option(help="number of samples (default 64)")] = 64,
    seed: Seed = 0,
    out: Out = None,
    resume: Resume = False,
    overwrite: Overwrite = False,
    device: Device = "cpu",
    target: Target = "true",
    kinds: Annotated[str, typer.Option(help="pixel,region")] = "pixel,region",
    orders: Annotated[str, typer.Option(help="morf,lerf[,random]")] = "morf,lerf",
    baseline: Annotated[str, typer.Option(help="black | zero | mean | uniform | blur")] = "black",
    step: Annotated[int, typer.Option(help="pixel flipping: pixels removed per step")] = 1,
    pixel_steps: Annotated[int | None, typer.Option(help="pixel flipping: max steps")] = None,
    patch_size: Annotated[int, typer.Option(help="region perturbation: tile size")] = 4,
    region_steps: Annotated[int | None, typer.Option(help="region perturbation: max regions")] = None,
    output: Annotated[str, typer.Option(help="score: softmax | logit")] = "softmax",
    single_pixel: Annotated[bool, typer.Option(help="also seed A's aopc_single_pixel variant")] = False,
    single_pixel_steps: Annotated[int, typer.Option(help="steps of aopc_single_pixel")] = 75,
    blur_sigma: Annotated[float, typer.Option(help="sigma of the blur baseline")] = 2.0,
    batch_size: Annotated[int, typer.Option(help="images per stored batch")] = 16,
    forward_batch: Annotated[int, typer.Option(help="inputs per forward pass")] = 2048,
) -> None:
    """Pixel flipping / region perturbation curves (MoRF, LeRF), AOPC, AUC, ABPC per method."""
    from xai_serve.evaluation.suites import FaithfulnessOptions

    common = _common(
        checkpoint=checkpoint,
        which=which,
        dataset=dataset,
        data_root=data_root,
        split=split,
        samples=samples,
        seed=seed,
        out=out,
        resume=resume,
        overwrite=overwrite,
        device=device,
        param=param,
    )
    opts = FaithfulnessOptions(
        kinds=_split(kinds),
        orders=_split(orders),
        baseline=baseline,
        features_in_step=step,
        pixel_steps=pixel_steps,
        patch_size=patch_size,
        region_steps=region_steps,
        output=output,
        target=target,
        single_pixel=single_pixel,
        single_pixel_steps=single_pixel_steps,
        blur_sigma=blur_sigma,
        batch_size=batch_size,
        forward_batch=forward_batch,
    )
    _run("faithfulness", common, opts, _split(methods))


@evaluate_app.command("feature-removal")
def feature_removal(
    checkpoint: Checkpoint = DEFAULT_CHECKPOINT,
    which: Which = "best",
    dataset: Dataset = "digits",
    data_root: DataRoot = None,
    split: Split = "test",
    methods: Methods = DEFAULT_METHODS,
    param: Params = None,
    samples: Annotated[int | None, typer.Option(help="number of samples (default 64)")] = 64,
    seed: Seed = 0,
    out: Out = None,
    resume: Resume = False,
    overwrite: Overwrite = False,
    device: Device = "cpu",
    target: Target = "true",
    fraction: Annotated[float, typer.Option(help="fraction of pixels removed")] = 0.1,
    baseline: Annotated[str, typer.Option(help="black | zero | mean | uniform | blur")] = "black",
    max_figures: Annotated[int, typer.Option(help="PNG figures for the first N samples")] = 16,
    batch_size: Annotated[int, typer.Option(help="images per stored batch")] = 32,
) -> None:
    """Original, heatmap, most / least relevant pixels removed, with class confidences (seed D)."""
    from xai_serve.evaluation.suites import FeatureRemovalOptions

    common = _common(
        checkpoint=checkpoint,
        which=which,
        dataset=dataset,
        data_root=data_root,
        split=split,
        samples=samples,
        seed=seed,
        out=out,
        resume=resume,
        overwrite=overwrite,
        device=device,
        param=param,
    )
    names = _split(methods)
    signed = _signed(names)
    opts = FeatureRemovalOptions(
        fraction=fraction,
        baseline=baseline,
        target=target,
        max_figures=max_figures,
        signed=signed,
        batch_size=batch_size,
    )
    _run("feature-removal", common, opts, names)


@evaluate_app.command("randomisation")
def randomisation(
    checkpoint: Checkpoint = DEFAULT_CHECKPOINT,
    which: Which = "best",
    dataset: Dataset = "digits",
    data_root: DataRoot = None,
    split: Split = "test",
    methods: Methods = DEFAULT_METHODS,
    param: Params = None,
    samples: Annotated[int | None, typer.Option(help="number of samples (default 32)")] = 32,
    seed: Seed = 0,
    out: Out = None,
    resume: Resume = False,
    overwrite: Overwrite = False,
    device: Device = "cpu",
    target: Target = "true",
    modes: Annotated[str, typer.Option(help="cascading,independent")] = "cascading,independent",
    variant: Annotated[
        str, typer.Option(help="standard | seed_a (seed A's layer order and noise)")
    ] = "standard",
    batch_size: Annotated[int, typer.Option(help="images per stored batch")] = 32,
) -> None:
    """Cascading / independent parameter randomisation: Spearman (signed, abs) and SSIM per layer."""
    from xai_serve.evaluation.suites import RandomisationOptions

    common = _common(
        checkpoint=checkpoint,
        which=which,
        dataset=dataset,
        data_root=data_root,
        split=split,
        samples=samples,
        seed=seed,
        out=out,
        resume=resume,
        overwrite=overwrite,
        device=device,
        param=param,
    )
    opts = RandomisationOptions(modes=_split(modes), variant=variant, target=target, batch_size=batch_size)
    _run("randomisation", common, opts, _split(methods))


def _signed(methods: list[str]) -> dict[str, bool]:
    from xai_serve.explain import list_methods

    specs = list_methods()
    return {m: specs[m].signed for m in methods if m in specs}


def register(app: typer.Typer) -> None:
    """Add ``xai evaluate`` to ``app``."""
    app.add_typer(evaluate_app, name="evaluate")


if __name__ == "__main__":  # pragma: no cover
    evaluate_app(sys.argv[1:])
