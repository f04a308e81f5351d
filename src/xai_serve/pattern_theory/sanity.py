"""Seed A's component-wise cascading weight randomisation (methods.md A.6, ``compute_correlationsGC``).

Levels (cumulative, top-down) on a ResGPTNet:

1. the heads ``cyg.c1``, ``cyg.c2``, ``cys.c1``, ``cys.c2`` weights <- ``max(w) * U(-1, 1) * 0.5``
   (the seed's ``noise_attenuation = 0.5``; ``max``, not ``max |w|``);
2. + ``eb2`` (ConvTranspose weight, BN weight), 3. + ``eb1``, 4. + ``eb0`` (same noise);
5. + backbone ``layer2``, 6. + ``layer1`` (every block's conv/bn weights and biases, not the
   downsample branch) <- ``0.1 * N(0, 1)``.

Per sample, for every pixel where the *original* model predicts a non-empty generator (arg-max
``yg`` > 0; at most ``pixels`` of them), the ``yg`` (resp. ``ys``) pixel output is explained with
target = the original arg-max channel at that pixel, for the original and each randomised model;
similarity = Spearman (signed and absolute) of the normalised maps, one value per pixel
(:func:`xai_serve.evaluation.similarity.compare_maps`, which replaces an all-zero map by small noise).
The class output ``y`` uses the ``randomisation`` suite (``--variant seed_a``).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import torch
from torch import nn

from xai_serve.evaluation.randomisation import Layer, randomise, restored
from xai_serve.evaluation.similarity import compare_maps
from xai_serve.explain import Component, explain

ATTENUATION = 0.5


def component_levels(model: nn.Module) -> list[Layer]:
    """The six cumulative levels of the component-wise check (see the module doc)."""
    names = dict(model.named_parameters())

    def weights(*modules: str) -> tuple[str, ...]:
        return tuple(n for m in modules for n in (f"{m}.weight",) if n in names)

    def block(prefix: str) -> tuple[str, ...]:
        return tuple(n for n in names if n.startswith(prefix + ".") and ".downsample." not in n)

    return [
        Layer("heads", weights("cyg.c1", "cyg.c2", "cys.c1", "cys.c2"), (), "max_uniform", ATTENUATION),
        Layer("eb2", weights("eb2.c1", "eb2.bn1"), (), "max_uniform", ATTENUATION),
        Layer("eb1", weights("eb1.c1", "eb1.bn1"), (), "max_uniform", ATTENUATION),
        Layer("eb0", weights("eb0.c1", "eb0.bn1"), (), "max_uniform", ATTENUATION),
        Layer("backbone.layer2", block("backbone.layer2"), (), "normal", 0.1),
        Layer("backbone.layer1", block("backbone.layer1"), (), "normal", 0.1),
    ]


@torch.no_grad()
def randomise_level(model: nn.Module, layer: Layer, seed: int) -> None:
    """``max_uniform``: ``w <- max(w) * U(-1, 1) * scale``; other kinds as the randomisation suite."""
    if layer.noise != "max_uniform":
        randomise(model, layer, seed)
        return
    g = torch.Generator().manual_seed(seed)
    params = dict(model.named_parameters())
    for name in layer.params:
        p = params[name]
        u = torch.rand(p.shape, generator=g, dtype=torch.float64) * 2 - 1
        p.copy_((float(p.max()) * u * layer.scale).to(p))


def component_cascade(
    model: nn.Module,
    x: torch.Tensor,
    methods: Mapping[str, Mapping[str, Any]],
    *,
    seed: int = 0,
    pixels: int = 4,
    layers: list[Layer] | None = None,
) -> dict[str, dict[str, dict[str, np.ndarray]]]:
    """``{output: {method: {"spearman" | "spearman_abs": (L + 1, P)}}}`` for one sample ``x`` (1, C, H, W).

    Row 0 compares the original maps with themselves (1.0); row l the model randomised to level l.
    The model is restored afterwards.
    """
    layers = layers if layers is not None else component_levels(model)
    with torch.no_grad():
        _, yg, ys = model(x)
    pred_g, pred_s = yg[0].argmax(0), ys[0].argmax(0)
    where = [(int(i), int(j)) for i, j in torch.nonzero(pred_g > 0).tolist()][:pixels]
    out: dict[str, dict[str, dict[str, list[np.ndarray]]]] = {}
    if not where:
        return {}
    targets = {
        "yg": [Component("yg", i, j, int(pred_g[i, j])) for i, j in where],
        "ys": [Component("ys", i, j, int(pred_s[i, j])) for i, j in where],
    }
    batch = x.expand(len(where), *x.shape[1:]).clone()
    rng = np.random.default_rng(seed)

    def maps() -> dict[tuple[str, str], np.ndarray]:
        res = {}
        for output, t in targets.items():
            for name, heat in explain(model, batch, dict(methods), t).items():
                res[(output, name)] = heat.detach().to(torch.float64).numpy()
        return res

    original = maps()

    def record(current: dict[tuple[str, str], np.ndarray]) -> None:
        for (output, name), a in current.items():
            sims = compare_maps(original[(output, name)], a, rng)
            slot = out.setdefault(output, {}).setdefault(name, {})
            for key in ("spearman", "spearman_abs"):
                slot.setdefault(key, []).append(np.asarray(sims[key]))

    record(original)
    with restored(model):
        for level, layer in enumerate(layers, start=1):
            randomise_level(model, layer, seed * 1_000_003 + level)
            record(maps())
    return {o: {m: {k: np.stack(v) for k, v in d.items()} for m, d in md.items()} for o, md in out.items()}


def run_component_randomisation(ctx: Any, run: Any, opts: Any, seed: int) -> dict[str, Any]:
    """``xai evaluate randomisation --variant components``: :func:`component_cascade` on every chosen
    sample of a multi-output model (``ctx.full_model``), the evaluated methods with their parameters (a
    ``layer`` named through the classifier view, ``model.channel_adj``, is the model's ``channel_adj``),
    the same randomised model for every sample (level seeds from ``seed``), cascading only (the seed's
    check). Writes ``similarity.csv`` (one row per explained pixel and level), ``summary.csv`` (mean /
    std per method, output and level; ``method`` is ``NAME[yg]`` / ``NAME[ys]``, so the suite's verdict
    and curves read it unchanged), ``layers.csv`` and ``randomisation.png``."""
    from xai_serve.errors import InvalidParameterError
    from xai_serve.evaluation import plots
    from xai_serve.evaluation.store import write_csv
    from xai_serve.evaluation.suites.common import concat, mean_std, run_batches
    from xai_serve.evaluation.suites.randomisation import write_layers

    model = ctx.full_model
    if model is None:
        raise InvalidParameterError(
            "variant 'components' needs a model with several outputs (seed A's yg / ys); this one has one"
        )
    if "cascading" not in opts.modes:
        raise InvalidParameterError("variant 'components' is cascading only: add 'cascading' to --modes")
    from xai_serve.pattern_theory.views import full_model_layer

    method_params = ctx.info.get("method_params", {})
    methods = {m: dict(method_params.get(m, {})) for m in ctx.attributions}
    for params in methods.values():  # layers were named through the classifier view
        if isinstance(params.get("layer"), str):
            params["layer"] = full_model_layer(params["layer"])
    if not methods:
        raise InvalidParameterError("randomisation needs at least one method")
    layers = component_levels(model)
    names = [layer.name for layer in layers]
    keys = [(o, m, k) for o in ("yg", "ys") for m in methods for k in ("spearman", "spearman_abs")]

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
                np.full(res["yg"][next(iter(methods))]["spearman"].shape[1], int(ctx.indices[sl][j]))
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
    for o in ("yg", "ys"):
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
