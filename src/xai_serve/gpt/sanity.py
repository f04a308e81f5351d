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
