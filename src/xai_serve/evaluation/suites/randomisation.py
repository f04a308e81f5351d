"""Suite ``randomisation``: cascading / independent model-parameter randomisation sanity check
(Adebayo et al. 2018, "Sanity Checks for Saliency Maps").

Per method, mode and level (0 = original, then layers top-down, :mod:`xai_serve.evaluation.randomisation`):
Spearman (signed, absolute) and SSIM between the attribution of the original and of the randomised
model. Outputs: ``similarity.csv`` (per sample), ``summary.csv`` (mean / std per level),
``layers.csv`` (the schedule), ``randomisation.png`` (Adebayo et al. style curves) and
``randomisation_maps.png`` (the first sample's maps per level, cascading). The variant
``components`` runs the component-wise cascade of a model with component outputs instead
(:func:`run_components`). The report's verdict is the certification's rule
(:mod:`xai_serve.evaluation.sanity_rule`).
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
from xai_serve.evaluation.sanity_rule import SANITY_THRESHOLD, SanityRule
from xai_serve.evaluation.store import write_csv
from xai_serve.jobs.rundir import RunDir, read_record

if TYPE_CHECKING:
    from xai_serve.evaluation.context import EvalContext
    from xai_serve.models.randomisation_levels import RandomisationLevel

MODES = ("cascading", "independent")


@dataclass
class RandomisationOptions:
    modes: list[str] = opt(list(MODES), "cascading,independent")
    variant: str = opt(
        "standard",
        "standard | pattern_theory (the General Pattern Theory code's layer order and noise) | components "
        "(the component-wise cascade of a model with component outputs, its declared levels, cascading only)",
    )
    pixels: int = opt(4, "variant components: predicted seed pixels explained per sample (at most)")
    target: str = opt("true", "class explained and scored: true | predicted")
    batch_size: int = opt(32, "images per stored batch")
    threshold: float = opt(
        SANITY_THRESHOLD, "the report's sanity rule: a method passes when |mean Spearman| is below this"
    )

    def validate(self) -> None:
        try:
            SanityRule(self.threshold)
        except ValueError as exc:
            raise InvalidParameterError(str(exc)) from None


MEASURES = ("spearman", "spearman_abs", "ssim")


def write_layers(run: RunDir, layers: list[RandomisationLevel], variant: str) -> None:
    """``layers.csv``: one row per randomisation level (the parameters it re-draws, noise, scale)."""
    write_csv(
        run.path("layers.csv"),
        [
            {
                "level": i,
                "layer": layer.name,
                "params": " ".join(layer.params),
                "noise": layer.noise,
                "scale": layer.scale,
                "variant": variant,
            }
            for i, layer in enumerate(layers, start=1)
        ],
    )


def run_randomisation(ctx: EvalContext, run: RunDir, opts: RandomisationOptions, seed: int) -> dict[str, Any]:
    from xai_serve.evaluation import plots
    from xai_serve.evaluation.randomisation import schedule, similarity_by_level

    opts.validate()
    for mode in opts.modes:
        if mode not in MODES:
            raise InvalidParameterError(f"mode must be one of {', '.join(MODES)}; got {mode!r}")
    if opts.variant == "components":  # the component-wise cascade, on the full model
        return run_components(ctx, run, opts, seed)
    methods = list(ctx.attributions)
    if not methods:
        raise InvalidParameterError("randomisation needs at least one method")
    layers = schedule(ctx.model, opts.variant)
    names = [layer.name for layer in layers]

    def compute(i: int, sl: slice) -> dict[str, np.ndarray]:
        x, y = ctx.batch(sl)
        t = ctx.targets(x, y, opts.target)
        out = {"index": ctx.indices[sl].numpy()}
        for mode in opts.modes:
            maps: dict[str, list[np.ndarray]] = {}
            res = similarity_by_level(
                ctx.model,
                ctx.attributions,
                x,
                t,
                layers,
                mode,
                seed,
                noise_seed=(i,),
                maps_out=maps if i == 0 else None,
            )
            for m, d in res.items():
                for measure, v in d.items():
                    out[f"{m}.{mode}.{measure}"] = v
            for m, ms in maps.items():
                out[f"{m}.{mode}.maps"] = np.stack(ms)
        return out

    parts = run_batches(run, ctx, opts.batch_size, compute, "randomisation")
    index = concat(parts, "index")
    write_layers(run, layers, opts.variant)
    rows, summary = [], []
    results: dict[tuple[str, str], dict[str, np.ndarray]] = {}
    for m in methods:
        for mode in opts.modes:
            res = {measure: concat(parts, f"{m}.{mode}.{measure}", axis=1) for measure in MEASURES}
            results[(m, mode)] = res
            for level in range(len(layers) + 1):
                layer = "original" if level == 0 else names[level - 1]
                for j in range(index.size):
                    rows.append(
                        {
                            "index": int(index[j]),
                            "method": m,
                            "mode": mode,
                            "level": level,
                            "layer": layer,
                            **{k: float(res[k][level, j]) for k in MEASURES},
                        }
                    )
                s: dict[str, Any] = {
                    "method": m,
                    "mode": mode,
                    "variant": opts.variant,
                    "level": level,
                    "layer": layer,
                }
                for k in MEASURES:
                    s[f"{k}_mean"], s[f"{k}_std"] = mean_std(res[k][level])
                s["n"] = int(index.size)
                s["seed"] = seed
                summary.append(s)
    write_csv(run.path("similarity.csv"), rows)
    write_csv(run.path("summary.csv"), summary)
    plots.randomisation_curves(results, names, opts.modes, run.path("randomisation.png"))
    mode0 = "cascading" if "cascading" in opts.modes else opts.modes[0]
    maps = {m: parts[0][f"{m}.{mode0}.maps"] for m in methods if f"{m}.{mode0}.maps" in parts[0]}
    if maps:
        plots.randomisation_maps(maps, names, run.path("randomisation_maps.png"))
    return {"n": int(index.size), "layers": names, "summary": summary}


def run_components(ctx: EvalContext, run: RunDir, opts: RandomisationOptions, seed: int) -> dict[str, Any]:
    """``xai evaluate randomisation --variant components``: the component-wise cascade
    (:func:`~xai_serve.evaluation.component_randomisation.component_cascade`) on every chosen sample
    of a model with component outputs (``ctx.full_model``), the evaluated methods with their parameters
    (a ``layer`` named through the classifier view, ``model.channel_adj``, is the model's
    ``channel_adj``), the same randomised model for every sample (level seeds from ``seed``),
    cascading only (as Tjoa & Guan's check). Writes ``similarity.csv`` (one row per explained pixel and
    level), ``summary.csv`` (mean / std per method, output and level; ``method`` is ``NAME[OUTPUT]``,
    e.g. ``gradient[yg]``, so the suite's verdict and curves read it unchanged), ``layers.csv`` and
    ``randomisation.png``."""
    from xai_serve.evaluation import plots
    from xai_serve.evaluation.component_randomisation import component_cascade, component_outputs
    from xai_serve.models.multi_output import full_model_layer
    from xai_serve.models.randomisation_levels import component_levels

    model = ctx.full_model
    if model is None:
        raise InvalidParameterError(
            "variant 'components' needs a model with component outputs (models.multi_output); "
            "this one has one output"
        )
    if "cascading" not in opts.modes:
        raise InvalidParameterError("variant 'components' is cascading only: add 'cascading' to --modes")
    method_params = ctx.info.get("method_params", {})
    methods = {m: dict(method_params.get(m, {})) for m in ctx.attributions}
    for params in methods.values():  # layers were named through the classifier view
        if isinstance(params.get("layer"), str):
            params["layer"] = full_model_layer(params["layer"])
    if not methods:
        raise InvalidParameterError("randomisation needs at least one method")
    layers = component_levels(model)
    names = [layer.name for layer in layers]
    outputs = component_outputs(model)
    keys = [(o, m, k) for o in outputs for m in methods for k in ("spearman", "spearman_abs")]

    def compute(i: int, sl: slice) -> dict[str, np.ndarray]:
        x, _ = ctx.batch(sl)
        cols: dict[str, list[np.ndarray]] = {f"{o}.{m}.{k}": [] for o, m, k in keys}
        owner: list[np.ndarray] = []
        for j in range(x.shape[0]):
            res = component_cascade(model, x[j : j + 1], methods, seed=seed, pixels=opts.pixels)
            if not res:  # no pixel with a non-empty predicted generator
                continue
            for o, m, k in keys:
                cols[f"{o}.{m}.{k}"].append(res[o][m][k])
            owner.append(
                np.full(res[outputs[0]][next(iter(methods))]["spearman"].shape[1], int(ctx.indices[sl][j]))
            )
        empty = np.zeros((len(layers) + 1, 0))
        out = {key: np.concatenate(v, axis=1) if v else empty for key, v in cols.items()}
        out["index"] = np.concatenate(owner) if owner else np.zeros(0, dtype=np.int64)
        return out

    parts = run_batches(run, ctx, opts.batch_size, compute, "randomisation (components)")
    index = concat(parts, "index")
    write_layers(run, layers, opts.variant)
    rows, summary = [], []
    results: dict[tuple[str, str], dict[str, np.ndarray]] = {}
    for o in outputs:
        for m in methods:
            res = {k: concat(parts, f"{o}.{m}.{k}", axis=1) for k in ("spearman", "spearman_abs")}
            label = f"{m}[{o}]"
            results[(label, "cascading")] = res
            for level in range(len(layers) + 1):
                layer = "original" if level == 0 else names[level - 1]
                base = {"method": label, "output": o, "mode": "cascading", "level": level, "layer": layer}
                for p in range(index.size):
                    rows.append(
                        {
                            "index": int(index[p]),
                            "pixel": p,
                            **base,
                            **{k: float(v[level, p]) for k, v in res.items()},
                        }
                    )
                s: dict[str, Any] = {**base, "variant": opts.variant}
                for k, v in res.items():
                    s[f"{k}_mean"], s[f"{k}_std"] = mean_std(v[level])
                s["n"] = int(index.size)
                s["seed"] = seed
                summary.append(s)
    write_csv(run.path("similarity.csv"), rows)
    write_csv(run.path("summary.csv"), summary)
    plots.randomisation_curves(results, names, ["cascading"], run.path("randomisation.png"))
    return {"n": int(index.size), "layers": names, "summary": summary}


def verdict(root: Path) -> str | None:
    """Per method, pass or fail at the fully randomised level by the sanity rule that certifies it
    (:class:`~xai_serve.evaluation.sanity_rule.SanityRule`, with the run's ``threshold``: ``xai certify
    --threshold`` passes its own, so credentials.json and this verdict agree)."""
    rows = [r for r in read_rows(root / "summary.csv") if r.get("mode") == "cascading"]
    if not rows:
        rows = read_rows(root / "summary.csv")
    if not rows:
        return None
    options = read_record(root).get("config", {}).get("options", {})
    rule = SanityRule(float(options.get("threshold", SANITY_THRESHOLD)))
    verdicts = []
    for m in dict.fromkeys(r["method"] for r in rows):
        top = max((r for r in rows if r["method"] == m), key=lambda r: int(r["level"]))
        s = as_float(top["spearman_abs_mean"])
        ok = rule.passes(s)
        verdicts.append(f"{m} {'passes' if ok else '<b>fails</b>'} (|Spearman| {s:.2f})")
    return (
        f"Parameter randomisation ({rows[0]['mode']}, all layers randomised; a method passes when its map "
        f"changes, mean |Spearman| of absolute maps < {rule.threshold}): " + "; ".join(verdicts) + "."
    )


SUITE = register_suite(
    Suite(
        name="randomisation",
        help="Cascading / independent parameter randomisation: Spearman (signed, abs) and SSIM per layer.",
        options=RandomisationOptions,
        run=run_randomisation,
        defaults={"samples": 32},
        verdict=verdict,
    )
)
