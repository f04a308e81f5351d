"""Suite ``randomisation``: cascading / independent model-parameter randomisation sanity check.

Per method, mode and level (0 = original, then layers top-down): Spearman (signed, absolute) and
SSIM between the attribution of the original and of the randomised model. Outputs:
``similarity.csv`` (per sample), ``summary.csv`` (mean / std per level), ``layers.csv`` (the
schedule), ``randomisation.png`` (Adebayo et al. style curves) and ``randomisation_maps.png``
(the first sample's maps per level, cascading).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from xai_serve.errors import InvalidParameterError
from xai_serve.evaluation import plots
from xai_serve.evaluation.context import EvalContext
from xai_serve.evaluation.randomisation import MODES, Layer, schedule, similarity_by_level
from xai_serve.evaluation.specs.randomisation import RandomisationOptions
from xai_serve.evaluation.store import write_csv
from xai_serve.evaluation.suites.common import concat, mean_std, run_batches
from xai_serve.jobs.rundir import RunDir

MEASURES = ("spearman", "spearman_abs", "ssim")


def write_layers(run: RunDir, layers: list[Layer], variant: str) -> None:
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
    for mode in opts.modes:
        if mode not in MODES:
            raise InvalidParameterError(f"mode must be one of {', '.join(MODES)}; got {mode!r}")
    if opts.variant == "components":  # seed A's component-wise cascade (A.6), on the full model
        from xai_serve.pattern_theory.sanity import run_component_randomisation

        return run_component_randomisation(ctx, run, opts, seed)
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
