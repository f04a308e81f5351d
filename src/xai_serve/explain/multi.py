"""Several methods on one batch: :func:`explain` and :func:`explain_detailed`.

Methods computed from one backprop pass (:class:`~xai_serve.explain.backprop.BackpropExplainer`:
gradient, input_x_gradient, guided_backprop, deconvnet, gradcam, guided_gradcam, decomposed, lrp) share
one forward pass: their requests are merged and each ReLU mode costs one backward pass over the shared
graph; Grad-CAM's layer gradient rides the plain backward pass. A method with a pass extension (lrp)
makes its forward pass the shared one and its relevance one more backward pass
(:func:`~xai_serve.explain.backprop.run_backprop`). Where the shared pass cannot give every method its
own answer (:class:`~xai_serve.explain.passes.SharedPassUnavailable`), the methods without an
extension share one pass and each method with one runs alone; every other error propagates. The other
methods (layer_guided_backprop, filter_image, class_image) run on their own.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import torch
from torch import nn

from xai_serve.errors import InvalidParameterError, NonFiniteResultError
from xai_serve.explain.backprop import BackpropExplainer, BackpropRequest, run_backprop, run_backprop_targets
from xai_serve.explain.context import ModelContext
from xai_serve.explain.passes import SharedPassUnavailable
from xai_serve.explain.registry import Attribution, Explainer, create_explainer
from xai_serve.explain.targets import Target

Methods = Sequence[str] | Mapping[str, Mapping[str, Any]]


def _explainers(model: nn.Module, methods: Methods, context: ModelContext | None) -> dict[str, Explainer]:
    if isinstance(methods, str):
        methods = [methods]
    items = methods.items() if isinstance(methods, Mapping) else ((name, {}) for name in methods)
    out: dict[str, Explainer] = {}
    for name, params in items:
        if name in out:
            raise InvalidParameterError(f"method {name!r} is requested twice")
        out[name] = create_explainer(name, model, context=context, **dict(params or {}))
    if not out:
        raise InvalidParameterError("no method requested")
    return out


def check_finite(name: str, attribution: Attribution) -> Attribution:
    """``attribution`` unchanged, or NonFiniteResultError when its map has a NaN or an infinity."""
    heat = attribution.heatmap
    if not bool(torch.isfinite(heat).all()):
        bad = int((~torch.isfinite(heat)).sum())
        raise NonFiniteResultError(
            f"method {name!r} produced {bad} NaN or infinite value{'s' if bad > 1 else ''} of {heat.numel()} "
            "(numerical overflow or 0/0 with these parameters); the map is not served"
        )
    return attribution


def explain_detailed(
    model: nn.Module,
    x: torch.Tensor,
    methods: Methods,
    target: Target = "predicted",
    context: ModelContext | None = None,
) -> dict[str, Attribution]:
    """Run ``methods`` (names, or name -> params) on batch ``x``; name -> :class:`Attribution`.

    Every Attribution carries ``logits`` (the model output of the pass it came from; the backprop
    methods share one) and ``classes`` (the explained class per sample). ``context``: the model's input
    normalisation. A map with a NaN or an infinity raises :class:`NonFiniteResultError`.
    """
    explainers = _explainers(model, methods, context)
    shared = {n: e for n, e in explainers.items() if isinstance(e, BackpropExplainer)}
    results: dict[str, Attribution] = {}
    if shared:
        results.update(_shared_pass(model, x, target, shared))
    for name, other in explainers.items():
        if name not in results:
            results[name] = other.attribute(x, target)
    return {name: check_finite(name, results[name]) for name in explainers}


def _shared_pass(
    model: nn.Module, x: torch.Tensor, target: Target, explainers: dict[str, BackpropExplainer]
) -> dict[str, Attribution]:
    """The backprop methods' attributions from one pass, or, where one pass cannot serve them all, from
    one pass of the methods without a pass extension and one of each method with one."""
    requests: dict[str, BackpropRequest] = {}
    for name, explainer in explainers.items():
        explainer.prepare(x)
        requests[name] = explainer.request()
    extended = [n for n in explainers if requests[n].extension is not None]
    try:
        return _one_pass(model, x, target, explainers, requests)
    except SharedPassUnavailable:
        if not extended or len(explainers) == 1:
            raise  # separate passes would be the same pass
    plain = {n: e for n, e in explainers.items() if n not in extended}
    results = _one_pass(model, x, target, plain, requests) if plain else {}
    for name in extended:
        results.update(_one_pass(model, x, target, {name: explainers[name]}, requests))
    return results


def _one_pass(
    model: nn.Module,
    x: torch.Tensor,
    target: Target,
    explainers: dict[str, BackpropExplainer],
    requests: dict[str, BackpropRequest],
) -> dict[str, Attribution]:
    merged = BackpropRequest()
    for name in explainers:
        merged.merge(requests[name])
    result = run_backprop(model, x, target, merged)
    return {name: explainer.finish(result) for name, explainer in explainers.items()}


def explain(
    model: nn.Module,
    x: torch.Tensor,
    methods: Methods,
    target: Target = "predicted",
    context: ModelContext | None = None,
) -> dict[str, torch.Tensor]:
    """Run ``methods`` on batch ``x``; name -> heatmap shaped like ``x``."""
    return {name: a.heatmap for name, a in explain_detailed(model, x, methods, target, context).items()}


def explain_targets(
    model: nn.Module,
    x: torch.Tensor,
    methods: Methods,
    classes: torch.Tensor | Sequence[Sequence[int]],
    context: ModelContext | None = None,
) -> dict[str, Attribution]:
    """Several classes per sample: ``classes`` (B, K) -> name -> one :class:`Attribution` of B * K rows,
    row ``b * K + k`` explaining class ``classes[b][k]`` of sample ``b`` (equal, up to float rounding, to
    :func:`explain_detailed` on the sample repeated K times with those targets).

    The backprop methods (the gradient family, Grad-CAM, guided Grad-CAM, LRP...) run ONE forward pass
    and batched backward passes over the K seeds
    (:func:`~xai_serve.explain.backprop.run_backprop_targets`); the other methods run on the repeated
    rows."""
    table = torch.as_tensor(classes, dtype=torch.long)
    if table.ndim != 2 or table.shape[0] != x.shape[0]:
        raise InvalidParameterError(
            f"several targets need a (batch, K) class table, got shape {tuple(table.shape)} for a batch of "
            f"{x.shape[0]}"
        )
    k_count = table.shape[1]
    explainers = _explainers(model, methods, context)
    shared = {n: e for n, e in explainers.items() if isinstance(e, BackpropExplainer)}
    results: dict[str, Attribution] = {}
    if shared:
        for explainer in shared.values():
            explainer.prepare(x)
        try:
            results.update(_targets_pass(model, x, table, shared))
        except SharedPassUnavailable:
            for name, explainer in shared.items():
                results.update(_targets_pass(model, x, table, {name: explainer}))
    repeated = x.repeat_interleave(k_count, dim=0)
    for name, other in explainers.items():
        if name not in results:
            results[name] = other.attribute(repeated, table.reshape(-1).tolist())
    return {name: check_finite(name, results[name]) for name in explainers}


def _targets_pass(
    model: nn.Module, x: torch.Tensor, table: torch.Tensor, explainers: dict[str, BackpropExplainer]
) -> dict[str, Attribution]:
    """The backprop methods' attributions for every column of ``table`` from one forward pass."""
    merged = BackpropRequest()
    for explainer in explainers.values():
        merged.merge(explainer.request())
    per_target = run_backprop_targets(model, x, table, merged)
    return {name: _interleave([e.finish(r) for r in per_target]) for name, e in explainers.items()}


def _interleave(parts: list[Attribution]) -> Attribution:
    """K attributions of a batch of B -> one of B * K rows, row ``b * K + k`` from ``parts[k]``."""
    k_count, first = len(parts), parts[0]
    heat = torch.stack([p.heatmap for p in parts], dim=1).flatten(0, 1)
    stats = {
        key: [parts[k].stats[key][b] for b in range(len(values)) for k in range(k_count)]
        for key, values in first.stats.items()
    }
    classes = None
    if all(p.classes is not None for p in parts):
        classes = [parts[k].classes[b] for b in range(len(first.classes or [])) for k in range(k_count)]  # type: ignore[index]
    logits = None if first.logits is None else first.logits.repeat_interleave(k_count, dim=0)
    return Attribution(heatmap=heat, stats=stats, logits=logits, classes=classes, layer=first.layer)
