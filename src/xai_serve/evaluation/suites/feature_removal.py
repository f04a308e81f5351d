"""Suite ``feature-removal`` (docs/methods.md#feature-removal): remove the most / least relevant
fraction of pixels.

Per sample and method: the original image, the heatmap, the image with the ``fraction`` most
relevant pixels replaced by the baseline and the one with the least relevant replaced, each with
its class confidences (softmax). Outputs: ``samples.json`` (every sample's confidences),
``summary.csv`` (accuracy and mean true-class confidence per method and variant) and one PNG per
sample and method under ``figures/`` for the first ``max_figures`` samples.

Removal curves (docs/methods.md#feature-removal, "remove most vs least relevant pixels" on MNIST-style data):
with ``curve_steps`` K > 0, for k = 0..K the ``round(k / K * pixels)`` most (MoRF) / least (LeRF) relevant
pixels (relevance summed over channels) are replaced by the baseline and the model scores the batch:
accuracy (argmax == label) and the target's softmax probability. ``curves.csv`` holds the mean curves
per method and order, ``curves_summary.csv`` their AUCs over the fraction axis (trapezoid, x from 0 to
1; MoRF lower = better, LeRF higher = better) and the ABPC (LeRF AUC - MoRF AUC);
``curves_accuracy.png`` / ``curves_probability.png`` plot them.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from xai_serve.errors import InvalidParameterError
from xai_serve.evaluation.batches import concat, mean_std, run_batches
from xai_serve.evaluation.csv_rows import as_float, read_rows
from xai_serve.evaluation.options import opt
from xai_serve.evaluation.registry import Suite, register_suite
from xai_serve.evaluation.store import write_csv, write_json
from xai_serve.jobs.rundir import RunDir

if TYPE_CHECKING:
    import torch

    from xai_serve.evaluation.context import EvalContext


@dataclass
class FeatureRemovalOptions:
    fraction: float = opt(0.1, "fraction of pixels removed")
    baseline: str = opt("black", "black | zero | mean | uniform | blur")
    target: str = opt("true", "class explained and scored: true | predicted")
    max_figures: int = opt(16, "PNG figures for the first N samples")
    signed: dict[str, bool] | None = None  # method -> diverging colour map (default: the engine's specs)
    blur_sigma: float = opt(2.0, "sigma of the blur baseline")
    batch_size: int = opt(32, "images per stored batch")
    curve_steps: int = opt(100, "removal curves: steps from none to all pixels (100: 1 percent each; 0: off)")


VARIANTS = ("original", "most_removed", "least_removed")


def run_feature_removal(
    ctx: EvalContext, run: RunDir, opts: FeatureRemovalOptions, seed: int
) -> dict[str, Any]:
    import torch

    from xai_serve.evaluation import plots
    from xai_serve.evaluation.baselines import make_baseline
    from xai_serve.evaluation.context import batch_generator
    from xai_serve.evaluation.ordering import pixel_steps

    if not 0 < opts.fraction <= 1:
        raise InvalidParameterError(f"fraction must be in (0, 1], got {opts.fraction}")
    methods = list(ctx.attributions)
    if not methods:
        raise InvalidParameterError("feature-removal needs at least one method")
    signed = opts.signed if opts.signed is not None else _engine_signed(methods)
    n_pixels = int(np.prod(ctx.images.shape[-2:]))
    n_remove = max(1, round(opts.fraction * n_pixels))
    if opts.curve_steps < 0:
        raise InvalidParameterError(f"curve_steps must be >= 0, got {opts.curve_steps}")
    fractions = np.linspace(0.0, 1.0, opts.curve_steps + 1) if opts.curve_steps else np.zeros(0)
    counts = [round(float(f) * n_pixels) for f in fractions]

    @torch.no_grad()
    def probs(x: torch.Tensor) -> torch.Tensor:
        return torch.softmax(ctx.model(x), dim=1)

    def compute(i: int, sl: slice) -> dict[str, np.ndarray]:
        x, y = ctx.batch(sl)
        t = ctx.targets(x, y, opts.target)
        base = make_baseline(
            opts.baseline, x, generator=batch_generator(seed, i, 0), blur_sigma=opts.blur_sigma
        )
        p0 = probs(x)
        out = {
            "index": ctx.indices[sl].numpy(),
            "label": y.cpu().numpy(),
            "target": t.cpu().numpy(),
            "original": p0.cpu().numpy(),
        }
        for m in methods:
            a = ctx.attributions[m](x, t).detach()
            a_pix = a if a.shape[1] == 1 else a.sum(dim=1, keepdim=True)
            removed = {}
            for order, name in (("morf", "most_removed"), ("lerf", "least_removed")):
                steps, _ = pixel_steps(a_pix, order)
                xr = torch.where(steps.to(x.device) <= n_remove, base, x)
                removed[name] = xr
                out[f"{m}.{name}"] = probs(xr).cpu().numpy()
                if opts.curve_steps > 0:
                    correct, score = _removal_curve(probs, x, base, steps.to(x.device), y, t, counts)
                    out[f"{m}.curve.{order}.accuracy"], out[f"{m}.curve.{order}.probability"] = correct, score
            for j in range(x.shape[0]):
                pos = sl.start + j
                if pos >= opts.max_figures:
                    break
                imgs = [
                    ctx.denormalise(v[j : j + 1])[0].cpu().numpy()
                    for v in (x, removed["most_removed"], removed["least_removed"])
                ]
                confs = [out["original"][j], out[f"{m}.most_removed"][j], out[f"{m}.least_removed"][j]]
                pct = f"{100 * n_remove / n_pixels:.3g}%"
                plots.feature_removal_figure(
                    imgs,
                    a[j].cpu().numpy(),
                    confs,
                    ctx.label_names[int(y[j])],
                    ctx.label_names,
                    ["original", m, f"{pct} most relevant removed", f"{pct} least relevant removed"],
                    signed.get(m, True),
                    run.path("figures", f"{pos:04d}_{int(ctx.indices[sl][j])}_{m}.png"),
                )
        return out

    parts = run_batches(run, ctx, opts.batch_size, compute, "feature-removal")
    index, label, target = concat(parts, "index"), concat(parts, "label"), concat(parts, "target")
    original = concat(parts, "original")
    samples = []
    rows = []
    for m in methods:
        variants = {"original": original, **{v: concat(parts, f"{m}.{v}") for v in VARIANTS[1:]}}
        for j in range(index.size):
            fig = run.root / "figures" / f"{j:04d}_{int(index[j])}_{m}.png"
            samples.append(
                {
                    "index": int(index[j]),
                    "label": int(label[j]),
                    "target": int(target[j]),
                    "method": m,
                    "fraction": opts.fraction,
                    "pixels_removed": n_remove,
                    "confidences": {v: [float(c) for c in variants[v][j]] for v in VARIANTS},
                    "predicted": {v: int(np.argmax(variants[v][j])) for v in VARIANTS},
                    "figure": str(fig.relative_to(run.root)) if fig.exists() else None,
                }
            )
        for v in VARIANTS:
            p = variants[v]
            acc = float((p.argmax(axis=1) == label).mean())
            conf, conf_sd = mean_std(p[np.arange(index.size), target])
            rows.append(
                {
                    "method": m,
                    "variant": v,
                    "fraction": opts.fraction,
                    "pixels_removed": n_remove,
                    "accuracy": acc,
                    "target_confidence_mean": conf,
                    "target_confidence_std": conf_sd,
                    "n": int(index.size),
                    "seed": seed,
                }
            )
    write_json(
        run.path("samples.json"),
        {
            "seed": seed,
            "fraction": opts.fraction,
            "baseline": opts.baseline,
            "labels": ctx.label_names,
            "samples": samples,
        },
    )
    write_csv(run.path("summary.csv"), rows)
    result: dict[str, Any] = {"n": int(index.size), "summary": rows}
    if opts.curve_steps > 0:
        result["curves"] = _write_curves(run, parts, methods, fractions, seed)
    return result


def _removal_curve(
    probs: Any,
    x: torch.Tensor,
    base: torch.Tensor,
    steps: torch.Tensor,
    label: torch.Tensor,
    target: torch.Tensor,
    counts: list[int],
) -> tuple[np.ndarray, np.ndarray]:
    """Per sample and step k: correct (0/1) and the target's probability with the ``counts[k]`` first
    pixels of the order (``steps`` ranks, 1-based) replaced by the baseline; (B, K + 1) each."""
    import torch

    correct, score = [], []
    rows = torch.arange(x.shape[0], device=x.device)
    for n in counts:
        p = probs(torch.where(steps <= n, base, x))
        correct.append((p.argmax(dim=1) == label).float().cpu().numpy())
        score.append(p[rows, target].cpu().numpy())
    return np.stack(correct, axis=1), np.stack(score, axis=1)


def _write_curves(
    run: RunDir, parts: Any, methods: list[str], fractions: np.ndarray, seed: int
) -> list[dict[str, Any]]:
    from xai_serve.evaluation import plots

    curve_rows: list[dict[str, Any]] = []
    summary: list[dict[str, Any]] = []
    per_sample: dict[str, dict[tuple[str, str], np.ndarray]] = {"accuracy": {}, "probability": {}}
    for m in methods:
        areas: dict[tuple[str, str], float] = {}
        for order in ("morf", "lerf"):
            for kind in ("accuracy", "probability"):
                values = concat(parts, f"{m}.curve.{order}.{kind}")
                per_sample[kind][(m, order)] = values
                areas[(order, kind)] = float(np.trapezoid(values.mean(axis=0), fractions))
            acc = per_sample["accuracy"][(m, order)].mean(axis=0)
            prob = per_sample["probability"][(m, order)].mean(axis=0)
            for f, a, p in zip(fractions, acc, prob, strict=True):
                curve_rows.append(
                    {"method": m, "order": order, "fraction": float(f), "accuracy": float(a),
                     "target_probability": float(p)}
                )  # fmt: skip
            summary.append(
                {
                    "method": m,
                    "order": order,
                    "auc_accuracy": areas[(order, "accuracy")],
                    "auc_probability": areas[(order, "probability")],
                    "steps": int(fractions.size - 1),
                    "n": int(per_sample["accuracy"][(m, order)].shape[0]),
                    "seed": seed,
                }
            )
        for row in summary[-2:]:
            row["abpc_accuracy"] = areas[("lerf", "accuracy")] - areas[("morf", "accuracy")]
            row["abpc_probability"] = areas[("lerf", "probability")] - areas[("morf", "probability")]
    write_csv(run.path("curves.csv"), curve_rows)
    write_csv(run.path("curves_summary.csv"), summary)
    for kind, label in (("accuracy", "accuracy"), ("probability", "target class probability")):
        plots.perturbation_curves(
            per_sample[kind],
            fractions,
            "fraction of pixels removed",
            label,
            f"feature removal: {label} (MoRF solid, LeRF dashed)",
            run.path(f"curves_{kind}.png"),
        )
    return summary


def _engine_signed(methods: list[str]) -> dict[str, bool]:
    """Whether each registered method's map is signed (diverging colour map); others default to True."""
    from xai_serve.explain import list_methods

    specs = list_methods()
    return {m: specs[m].signed for m in methods if m in specs}


def verdict(root: Path) -> str | None:
    rows = read_rows(root / "summary.csv")
    drops = []
    for m in dict.fromkeys(r["method"] for r in rows):
        v = {r["variant"]: as_float(r["target_confidence_mean"]) for r in rows if r["method"] == m}
        if {"original", "most_removed", "least_removed"} <= set(v):
            drops.append((v["original"] - v["most_removed"], v["original"] - v["least_removed"], m))
    if not drops:
        return None
    drops.sort(reverse=True)
    best = drops[0]
    return (
        f"Removing the most relevant pixels lowers the target confidence most for <b>{best[2]}</b> "
        f"(by {best[0]:.3f}; least relevant removed: {best[1]:.3f}). "
        + " ".join(f"{m}: {a:.3f} vs {b:.3f}." for a, b, m in drops[1:])
    )


SUITE = register_suite(
    Suite(
        name="feature-removal",
        help="Original, heatmap, most / least relevant pixels removed, with class confidences.",
        options=FeatureRemovalOptions,
        run=run_feature_removal,
        verdict=verdict,
    )
)
