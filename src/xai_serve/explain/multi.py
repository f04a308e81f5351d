"""Several methods on one batch: :func:`explain` and :func:`explain_detailed`.

Methods computed from input/layer gradients (gradient, input_x_gradient, guided_backprop, deconvnet,
gradcam, guided_gradcam) share one forward pass: their requests are merged and each ReLU mode costs
one backward pass over the shared graph; Grad-CAM's layer gradient rides the plain backward pass. One
``lrp`` among them joins that pass too (its forward pass becomes the shared one and its relevance one
more backward pass: :func:`~xai_serve.explain.backprop.run_backprop`); where the shared pass cannot
give every method its own answer, the gradient methods and LRP run separately, as the other methods
(a second lrp, layer_guided_backprop, class_image) always do.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import replace
from typing import Any

import torch
from torch import nn

from xai_serve.errors import InvalidParameterError, NonFiniteResultError
from xai_serve.explain.backprop import BackpropExplainer, BackpropRequest, run_backprop
from xai_serve.explain.context import ModelContext
from xai_serve.explain.lrp import Lrp
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

    Every Attribution carries ``logits`` (the model output of the pass it came from; the gradient
    methods share one) and ``classes`` (the explained class per sample). ``context``: the model's input
    normalisation. A map with a NaN or an infinity raises :class:`NonFiniteResultError`.
    """
    explainers = _explainers(model, methods, context)
    shared = {n: e for n, e in explainers.items() if isinstance(e, BackpropExplainer)}
    results: dict[str, Attribution] = {}
    if shared:
        request = BackpropRequest()
        for explainer in shared.values():
            explainer.prepare(x)
            request.merge(explainer.request())
        lrps = [name for name, e in explainers.items() if isinstance(e, Lrp)]
        result = None
        if len(lrps) == 1:
            result = _with_lrp(model, x, target, request, lrps[0], explainers[lrps[0]], results)
        if result is None:
            result = run_backprop(model, x, target, request)
        for name, explainer in shared.items():
            results[name] = explainer.finish(result)
    for name, other in explainers.items():
        if name not in results:
            results[name] = other.attribute(x, target)
    return {name: check_finite(name, results[name]) for name in explainers}


def _with_lrp(
    model: nn.Module,
    x: torch.Tensor,
    target: Target,
    request: BackpropRequest,
    name: str,
    lrp: Explainer,
    results: dict[str, Attribution],
) -> Any:
    """The gradient methods' pass with LRP in it (LRP's attribution stored in ``results``), or None
    when it fails: then every method runs on its own and reports its own error, if any."""
    assert isinstance(lrp, Lrp)
    try:
        result = run_backprop(model, x, target, replace(request, lrp=lrp.engine()))
    except Exception:
        return None
    results[name] = lrp.finish(result)
    return result


def explain(
    model: nn.Module,
    x: torch.Tensor,
    methods: Methods,
    target: Target = "predicted",
    context: ModelContext | None = None,
) -> dict[str, torch.Tensor]:
    """Run ``methods`` on batch ``x``; name -> heatmap shaped like ``x``."""
    return {name: a.heatmap for name, a in explain_detailed(model, x, methods, target, context).items()}
