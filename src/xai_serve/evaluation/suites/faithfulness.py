"""Suite ``faithfulness``: pixel flipping and region perturbation curves with AOPC, AUC, ABPC.

Per method, kind (``pixel``, ``region``) and order (``morf``, ``lerf``, optionally ``random``):
the curve of the target-class score (softmax probability by default) as features are removed
cumulatively. Optionally the General Pattern Theory ``aopc_single_pixel`` variant (signed and absolute).

Outputs: ``scores.csv`` (per sample, method, kind, order: aopc, auc), ``summary.csv`` (mean / std
of aopc and auc per order and abpc per method and kind), ``curves.csv`` (mean / std curve per
step), ``curves.npz`` (every per-sample curve), ``curves_pixel.png`` / ``curves_region.png``,
and with the variant ``aopc_single_pixel.csv`` / ``aopc_single_pixel.png``.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from xai_serve.atomic import atomic_write_bytes
from xai_serve.errors import InvalidParameterError
from xai_serve.evaluation.batches import concat, mean_std, run_batches
from xai_serve.evaluation.csv_rows import as_float, read_rows
from xai_serve.evaluation.options import opt
from xai_serve.evaluation.registry import Suite, register_suite
from xai_serve.evaluation.store import write_csv
from xai_serve.jobs.rundir import RunDir, npz_bytes

if TYPE_CHECKING:
    from xai_serve.evaluation.context import EvalContext


KINDS = ("pixel", "region")


@dataclass
class FaithfulnessOptions:
    kinds: list[str] = opt(list(KINDS), "pixel,region")
    orders: list[str] = opt(["morf", "lerf"], "morf,lerf[,random]")
    baseline: str = opt("black", "black | zero | mean | uniform | blur")
    features_in_step: int = opt(1, "pixel flipping: pixels removed per step", flag="--step")
    pixel_steps: int | None = opt(None, "pixel flipping: max steps (default: until all removed)")
    patch_size: int = opt(4, "region perturbation: tile size")
    region_steps: int | None = opt(None, "region perturbation: max regions (default: every tile)")
    output: str = opt("softmax", "score: softmax | logit")
    target: str = opt("true", "class explained and scored: true | predicted")
    single_pixel: bool = opt(False, "also the General Pattern Theory aopc_single_pixel variant")
    single_pixel_steps: int = opt(75, "steps of aopc_single_pixel")
    blur_sigma: float = opt(2.0, "sigma of the blur baseline")
    batch_size: int = opt(16, "images per stored batch (the unit of resumption and of distribution)")
    forward_batch: int = opt(2048, "inputs per forward pass")

    def validate(self) -> None:
        from xai_serve.evaluation.ordering import ORDERS

        for k in self.kinds:
            if k not in KINDS:
                raise InvalidParameterError(f"kind must be one of {', '.join(KINDS)}; got {k!r}")
        for o in self.orders:
            if o not in ORDERS:
                raise InvalidParameterError(f"order must be one of {', '.join(ORDERS)}; got {o!r}")
        if not self.kinds and not self.single_pixel:
            raise InvalidParameterError("nothing to compute: no kinds and no single-pixel variant")


def _key(*parts: str) -> str:
    return ".".join(parts)


def run_faithfulness(ctx: EvalContext, run: RunDir, opts: FaithfulnessOptions, seed: int) -> dict[str, Any]:
    import torch

    from xai_serve.evaluation import plots
    from xai_serve.evaluation.baselines import make_baseline
    from xai_serve.evaluation.context import batch_generator
    from xai_serve.evaluation.ordering import pixel_steps, region_steps
    from xai_serve.evaluation.perturbation import perturbation_curves
    from xai_serve.evaluation.scores import aopc, auc
    from xai_serve.evaluation.single_pixel_aopc import aopc_single_pixel

    opts.validate()
    methods = list(ctx.attributions)
    if not methods:
        raise InvalidParameterError("faithfulness needs at least one method")

    def compute(i: int, sl: slice) -> dict[str, np.ndarray]:
        x, y = ctx.batch(sl)
        t = ctx.targets(x, y, opts.target)
        base = make_baseline(
            opts.baseline, x, generator=batch_generator(seed, i, 0), blur_sigma=opts.blur_sigma
        )
        out: dict[str, np.ndarray] = {
            "index": ctx.indices[sl].numpy(),
            "label": y.cpu().numpy(),
            "target": t.cpu().numpy(),
        }
        for mi, m in enumerate(methods):
            a = ctx.attributions[m](x, t).detach()
            a_pix = a if a.shape[1] == 1 else a.sum(dim=1, keepdim=True)  # whole pixels
            for ki, kind in enumerate(opts.kinds):
                for oi, order in enumerate(opts.orders):
                    g = batch_generator(seed, i, 1 + mi, ki, oi)
                    if kind == "pixel":
                        steps, k = pixel_steps(a_pix, order, opts.features_in_step, g)
                        k = min(k, opts.pixel_steps or k)
                    else:
                        steps, k = region_steps(a_pix, order, opts.patch_size, opts.region_steps, g)
                    out[_key(m, kind, order)] = perturbation_curves(
                        ctx.model,
                        x,
                        t,
                        steps.to(x.device),
                        base,
                        k,
                        output=opts.output,
                        batch_size=opts.forward_batch,
                    ).numpy()
            if opts.single_pixel:
                for absolute in (False, True):
                    g = batch_generator(seed, i, 1 + mi, 99, int(absolute))
                    out[_key(m, "single_pixel", "abs" if absolute else "signed")] = aopc_single_pixel(
                        ctx.model,
                        x,
                        t,
                        a,
                        n_steps=opts.single_pixel_steps,
                        absolute=absolute,
                        generator=g,
                        batch_size=opts.forward_batch,
                    ).numpy()
        return out

    parts = run_batches(run, ctx, opts.batch_size, compute, "faithfulness")
    index, label, target = concat(parts, "index"), concat(parts, "label"), concat(parts, "target")
    n_pixels = int(np.prod(ctx.images.shape[-2:]))

    score_rows: list[dict[str, Any]] = []
    summary_rows: list[dict[str, Any]] = []
    curve_rows: list[dict[str, Any]] = []
    all_curves: dict[str, np.ndarray] = {"index": index}
    for m in methods:
        for kind in opts.kinds:
            aucs: dict[str, np.ndarray] = {}
            for order in opts.orders:
                c = concat(parts, _key(m, kind, order))
                all_curves[_key(m, kind, order)] = c
                ct = torch.from_numpy(c)
                a_, u_ = aopc(ct).numpy(), auc(ct).numpy()
                aucs[order] = u_
                for j in range(c.shape[0]):
                    score_rows.append(
                        {
                            "index": int(index[j]),
                            "label": int(label[j]),
                            "target": int(target[j]),
                            "method": m,
                            "kind": kind,
                            "order": order,
                            "aopc": float(a_[j]),
                            "auc": float(u_[j]),
                        }
                    )
                for metric, v in (("aopc", a_), ("auc", u_)):
                    mu, sd = mean_std(v)
                    summary_rows.append(
                        {
                            "method": m,
                            "kind": kind,
                            "order": order,
                            "metric": metric,
                            "mean": mu,
                            "std": sd,
                            "n": int(v.size),
                        }
                    )
                mean, std = np.nanmean(c, axis=0), np.nanstd(c, axis=0)
                for k in range(mean.size):
                    frac = min(k * opts.features_in_step, n_pixels) / n_pixels if kind == "pixel" else None
                    curve_rows.append(
                        {
                            "method": m,
                            "kind": kind,
                            "order": order,
                            "step": k,
                            "fraction_removed": frac,
                            "mean": float(mean[k]),
                            "std": float(std[k]),
                        }
                    )
            if "morf" in aucs and "lerf" in aucs:
                mu, sd = mean_std(aucs["lerf"] - aucs["morf"])
                summary_rows.append(
                    {
                        "method": m,
                        "kind": kind,
                        "order": "lerf-morf",
                        "metric": "abpc",
                        "mean": mu,
                        "std": sd,
                        "n": int(index.size),
                    }
                )
    for r in summary_rows:
        r["seed"] = seed
    write_csv(run.path("scores.csv"), score_rows)
    write_csv(run.path("summary.csv"), summary_rows)
    write_csv(run.path("curves.csv"), curve_rows)
    atomic_write_bytes(run.path("curves.npz"), npz_bytes(all_curves, compress=True))

    ylabel = "target-class probability" if opts.output == "softmax" else "target-class logit"
    for kind in opts.kinds:
        curves = {(m, o): all_curves[_key(m, kind, o)] for m in methods for o in opts.orders}
        if kind == "pixel":
            k_max = max(c.shape[1] for c in curves.values())
            xs = np.minimum(np.arange(k_max) * opts.features_in_step, n_pixels) / n_pixels
            title = f"pixel flipping ({opts.features_in_step} px/step, baseline {opts.baseline})"
            plots.perturbation_curves(
                curves, xs, "fraction of pixels removed", ylabel, title, run.path("curves_pixel.png")
            )
        else:
            k_max = max(c.shape[1] for c in curves.values())
            title = (
                f"region perturbation ({opts.patch_size}x{opts.patch_size} tiles, baseline {opts.baseline})"
            )
            plots.perturbation_curves(
                curves, np.arange(k_max), "regions removed", ylabel, title, run.path("curves_region.png")
            )
    if opts.single_pixel:
        sp_rows = []
        sp_curves = {}
        for m in methods:
            for mode in ("signed", "abs"):
                c = concat(parts, _key(m, "single_pixel", mode))
                sp_curves[(m, mode)] = c
                for step in range(c.shape[1]):
                    mu, sd = mean_std(c[:, step])
                    sp_rows.append(
                        {
                            "method": m,
                            "attribution": mode,
                            "L": step + 1,
                            "aopc_mean": mu,
                            "aopc_std": sd,
                            "seed": seed,
                        }
                    )
        write_csv(run.path("aopc_single_pixel.csv"), sp_rows)
        plots.perturbation_curves(
            sp_curves,
            np.arange(1, opts.single_pixel_steps + 1),
            "perturbation step L",
            "AOPC (logit)",
            "aopc_single_pixel (General Pattern Theory)",
            run.path("aopc_single_pixel.png"),
            styles={"signed": "-", "abs": "--"},
        )
    return {"n": int(index.size), "summary": summary_rows}


def verdict(root: Path) -> str | None:
    rows = read_rows(root / "summary.csv")
    parts = []
    for kind in ("pixel", "region"):
        morf = [r for r in rows if r["kind"] == kind and r["order"] == "morf" and r["metric"] == "aopc"]
        if not morf:
            continue
        ranked = sorted(morf, key=lambda r: -as_float(r["mean"]))
        best = ranked[0]
        order = ", ".join(f"{r['method']} {as_float(r['mean']):.3f}" for r in ranked)
        parts.append(
            f"By {kind} AOPC (MoRF, higher = more faithful), the most faithful method is "
            f"<b>{best['method']}</b> (ranking: {order})."
        )
        abpc = [r for r in rows if r["kind"] == kind and r["metric"] == "abpc"]
        bad = [r["method"] for r in abpc if as_float(r["mean"]) <= 0]
        if abpc:
            parts.append(
                "Every method removes relevant features before irrelevant ones (ABPC > 0)."
                if not bad
                else f"Not better than its reverse order (ABPC <= 0): {', '.join(bad)}."
            )
    return " ".join(parts) or None


SUITE = register_suite(
    Suite(
        name="faithfulness",
        help="Pixel flipping / region perturbation curves (MoRF, LeRF), AOPC, AUC, ABPC per method.",
        options=FaithfulnessOptions,
        run=run_faithfulness,
        verdict=verdict,
    )
)
