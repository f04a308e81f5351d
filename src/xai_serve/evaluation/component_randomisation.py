"""Component-wise cascading weight randomisation (General Pattern Theory, Tjoa & Guan,
``compute_correlationsGC``; the parameter randomisation of Adebayo et al. 2018 applied to pixel outputs).

For a model with component outputs (:mod:`xai_serve.models.multi_output`: per-pixel class maps after
the classifier, channel 0 = background) and the cumulative, top-down levels it declares
(``component_levels()``, :mod:`xai_serve.models.randomisation_levels`): per sample, for every pixel
where the *original* model predicts a non-background class in its first component output (at most
``pixels`` of them), each component output's pixel is explained with target = the original arg-max
channel there, for the original and each randomised model; similarity = Spearman (signed and absolute)
of the normalised maps, one value per pixel (:func:`xai_serve.evaluation.similarity.compare_maps`,
which replaces an all-zero map by small noise). The classifier output uses the ``randomisation``
suite's other variants.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import torch
from torch import nn

from xai_serve.errors import InvalidParameterError
from xai_serve.evaluation.randomisation import level_seed, randomise, restored
from xai_serve.evaluation.similarity import compare_maps
from xai_serve.explain import Component, explain
from xai_serve.models.multi_output import output_names
from xai_serve.models.randomisation_levels import RandomisationLevel, component_levels


def component_outputs(model: nn.Module) -> tuple[str, ...]:
    """The names of ``model``'s component outputs (every output after the classifier)."""
    names = output_names(model)[1:]
    if not names:
        raise InvalidParameterError(
            f"{type(model).__name__} has no component outputs (it names no outputs after the classifier)"
        )
    return names


def component_cascade(
    model: nn.Module,
    x: torch.Tensor,
    methods: Mapping[str, Mapping[str, Any]],
    *,
    seed: int = 0,
    pixels: int = 4,
    layers: list[RandomisationLevel] | None = None,
) -> dict[str, dict[str, dict[str, np.ndarray]]]:
    """``{output: {method: {"spearman" | "spearman_abs": (L + 1, P)}}}`` for one sample ``x`` (1, C, H, W).

    Row 0 compares the original maps with themselves (1.0); row l the model randomised to level l
    (level seeds :func:`~xai_serve.evaluation.randomisation.level_seed` of ``seed``). The model is
    restored afterwards. Empty when the first component output predicts background everywhere.
    """
    layers = layers if layers is not None else component_levels(model)
    names = component_outputs(model)
    with torch.no_grad():
        outputs = model(x)[1:]
    predicted = {name: out[0].argmax(0) for name, out in zip(names, outputs, strict=True)}
    first = predicted[names[0]]
    where = [(int(i), int(j)) for i, j in torch.nonzero(first > 0).tolist()][:pixels]
    out: dict[str, dict[str, dict[str, list[np.ndarray]]]] = {}
    if not where:
        return {}
    targets = {
        name: [Component(name, i, j, int(pred[i, j])) for i, j in where] for name, pred in predicted.items()
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
            randomise(model, layer, level_seed(seed, level))
            record(maps())
    return {o: {m: {k: np.stack(v) for k, v in d.items()} for m, d in md.items()} for o, md in out.items()}
