"""Layer-wise relevance propagation (Bach et al. 2015; Montavon et al. 2019), method ``lrp``.

Mechanism: for the duration of a call every relevant module's ``forward`` is replaced (through a
:class:`~xai_serve.explain.patching.ModelPatch`) by one whose autograd backward *is* the LRP rule, and
the "gradient" flowing backward is the relevance itself (Zennit's convention): the initial relevance is
the target score at the target output (one-hot times logit, no softmax) and the input "gradient" is the
relevance map. One forward and one backward pass; rules that need modified forwards (z+, gamma,
alpha-beta, z^B) compute them only for the layers that use them, and derived weights (BatchNorm merged,
``W+``, ...) are cached per model until a parameter changes, in an LRU cache of bounded size
(:func:`set_param_cache_limit`).

Per layer type:

* ``nn.Linear`` / ``nn.Conv1d`` / ``nn.Conv2d`` / ``nn.ConvTranspose2d``: the composite's rule
  (:mod:`xai_serve.explain.composites`), computed with BatchNorm-merged parameters when a BatchNorm
  follows directly (then the BatchNorm is the identity; the model's own tensors are never modified);
* ``nn.ReLU``: its own backward (relevance is zero wherever the ReLU output is zero, so the mask is a
  no-op); other activations, unmerged BatchNorm: relevance passes through unchanged (Zennit ``Pass``);
* residual ``Sum`` modules, ``AvgPool`` / ``AdaptiveAvgPool``: ``Norm`` (``R_i = x_i / stab(sum) R``);
* max pooling: winner-take-all (its gradient); Flatten, Dropout (eval), Identity, option-A shortcuts:
  gradient (they are linear maps that move values without mixing them).

Any other leaf module that the forward pass calls (or a non-leaf module with parameters of its own)
raises :class:`~xai_serve.errors.UnsupportedLayerError` naming it; operations outside modules get the
rule of their module counterpart or raise :class:`~xai_serve.errors.UnsupportedOperationError` naming
the call site (:mod:`xai_serve.explain.functional`); the map is never silently different.

Every result carries, per sample: ``relevance_sum`` (sum of the map), ``target_score`` (the explained
logit), ``conservation`` (their ratio) and ``bias_absorbed`` (``target_score - relevance_sum``: the
relevance absorbed by biases, BatchNorm shifts and stabilisers, plus any leak through an operation
the engine could not see; exactly 0 up to rounding for LRP-0/gamma/alpha-beta/z+/z^B/w^2/flat on a
bias-free ReLU network).
"""

from __future__ import annotations

import weakref
from collections import OrderedDict
from typing import Any

import torch
from torch import nn

from xai_serve.errors import InvalidArgumentError, UnsupportedLayerError
from xai_serve.explain.backprop import (
    BackpropRequest,
    BackpropResult,
    ReluMode,
    SharedPassUnavailable,
    run_backprop,
)
from xai_serve.explain.canonizers import disable_inplace, explicit_residuals
from xai_serve.explain.composites import COMPOSITES, FIRST_RULES, LayerInfo, LrpSettings
from xai_serve.explain.context import ModelContext
from xai_serve.explain.graph import BATCHNORM_TYPES, CONV_TYPES, LINEAR_TYPES, ModelGraph, analyse
from xai_serve.explain.params import ParamSpec
from xai_serve.explain.patching import ModelPatch
from xai_serve.explain.registry import Attribution, Explainer, register_method
from xai_serve.explain.rules import LinearOp, Params, Rule, quotient
from xai_serve.explain.targets import Target
from xai_serve.models.layers import PadShortcut, Sum

NORM_TYPES: tuple[type[nn.Module], ...] = (
    Sum,
    nn.AvgPool1d,
    nn.AvgPool2d,
    nn.AdaptiveAvgPool1d,
    nn.AdaptiveAvgPool2d,
)
PASS_TYPES: tuple[type[nn.Module], ...] = (
    nn.Tanh,
    nn.Sigmoid,
    nn.LeakyReLU,
    nn.ReLU6,
    nn.ELU,
    nn.GELU,
    nn.SiLU,
    nn.Softplus,
    nn.Softmax,
    nn.Hardtanh,
    nn.Mish,
)
GRADIENT_TYPES: tuple[type[nn.Module], ...] = (
    nn.ReLU,
    nn.MaxPool1d,
    nn.MaxPool2d,
    nn.AdaptiveMaxPool1d,
    nn.AdaptiveMaxPool2d,
    nn.Flatten,
    nn.Unflatten,
    nn.Dropout,
    nn.Dropout1d,
    nn.Dropout2d,
    nn.Identity,
    PadShortcut,
)


class _RuleFunction(torch.autograd.Function):
    """A linear layer whose backward is its LRP rule, or its plain gradient while ``layer.mode`` is not
    ``"lrp"`` (a pass shared with the gradient methods: :func:`~xai_serve.explain.backprop.run_backprop`)."""

    @staticmethod
    def forward(ctx: Any, a: torch.Tensor, layer: _RuleLayer) -> torch.Tensor:
        ctx.shape = a.shape
        # the rule's own tensor operations need no watching (functional.py): skip the torch-function
        # mode, which would otherwise inspect each of them (about a tenth of a small model's time)
        with torch._C.DisableTorchFunction():
            out, saved = layer.rule.forward(layer.op, a, layer.params)
        ctx.layer, ctx.saved = layer, saved
        return out

    @staticmethod
    def backward(ctx: Any, relevance: torch.Tensor) -> tuple[torch.Tensor, None]:
        layer = ctx.layer
        if layer.mode.value != "lrp":  # the gradient: W^T g with the (BatchNorm-merged) weights
            return layer.op.vjp(relevance, layer.params["w"], ctx.shape), None
        out = layer.rule.backward(layer.op, layer.params, ctx.saved, relevance)
        ctx.saved = None
        return out, None


def keep_saved_copy(t: torch.Tensor) -> None:
    """Before ``t`` is modified in place outside a module (``out += identity``): if ``t`` is the output of
    a rule layer, whose backward reads the output it saved, that layer keeps a private copy."""
    node = t.grad_fn
    saved = getattr(node, "saved", None)
    if (
        node is None
        or not isinstance(getattr(node, "layer", None), _RuleLayer)
        or not isinstance(saved, tuple)
    ):
        return
    ptr = t.untyped_storage().data_ptr()
    # our rule layer's autograd node keeps its saved tensors in `saved`
    setattr(  # noqa: B010
        node,
        "saved",
        tuple(
            s.clone() if isinstance(s, torch.Tensor) and s.untyped_storage().data_ptr() == ptr else s
            for s in saved
        ),
    )


class _NormIn(torch.autograd.Function):
    """Identity forward; backward multiplies by the input (the ``x_i *`` of the Norm rule)."""

    @staticmethod
    def forward(ctx: Any, x: torch.Tensor, mode: ReluMode) -> torch.Tensor:
        ctx.save_for_backward(x)
        ctx.mode = mode
        with torch._C.DisableTorchFunction():
            return x.view_as(x)

    @staticmethod
    def backward(ctx: Any, grad: torch.Tensor) -> tuple[torch.Tensor, None]:
        if ctx.mode.value != "lrp":
            return grad, None
        (x,) = ctx.saved_tensors
        return grad * x, None


class _NormOut(torch.autograd.Function):
    """Identity forward; backward divides by the stabilised output (the ``/ stab(z)`` of the Norm rule)."""

    @staticmethod
    def forward(ctx: Any, z: torch.Tensor, eps: float, mode: ReluMode) -> torch.Tensor:
        ctx.save_for_backward(z)
        ctx.eps, ctx.mode = eps, mode
        with torch._C.DisableTorchFunction():
            return z.view_as(z)

    @staticmethod
    def backward(ctx: Any, grad: torch.Tensor) -> tuple[torch.Tensor, None, None]:
        if ctx.mode.value != "lrp":
            return grad, None, None
        (z,) = ctx.saved_tensors
        return quotient(grad, z, ctx.eps), None, None


class _Pass(torch.autograd.Function):
    """``fn(x)`` forward; relevance passes through unchanged. Outside the ``"lrp"`` mode the backward is
    ``fn``'s gradient, recomputed from ``x`` (``fn`` must then be a function of its argument:
    ``recomputable``)."""

    @staticmethod
    def forward(ctx: Any, x: torch.Tensor, fn: Any, mode: ReluMode, recomputable: bool) -> torch.Tensor:
        ctx.fn, ctx.mode, ctx.recomputable = fn, mode, recomputable
        ctx.save_for_backward(x)
        return fn(x)

    @staticmethod
    def backward(ctx: Any, grad: torch.Tensor) -> tuple[torch.Tensor | None, None, None, None]:
        if ctx.mode.value == "lrp":
            return grad, None, None, None
        if not ctx.recomputable:
            raise SharedPassUnavailable("an operation passed by LRP has no gradient to recompute here")
        (x,) = ctx.saved_tensors
        with torch.enable_grad():
            xd = x.detach().requires_grad_(True)
            (g,) = torch.autograd.grad(ctx.fn(xd), xd, grad)
        return g, None, None, None


class _RuleLayer:
    def __init__(self, op: LinearOp, rule: Rule, params: Params, mode: ReluMode) -> None:
        self.op, self.rule, self.params, self.mode = op, rule, params, mode


_Cache = OrderedDict[Any, tuple[Any, Params]]
_PARAMS: weakref.WeakKeyDictionary[nn.Module, _Cache] = weakref.WeakKeyDictionary()
_CACHE_LIMIT: weakref.WeakKeyDictionary[nn.Module, int] = weakref.WeakKeyDictionary()
DEFAULT_CACHE_ENTRIES = 1024


def set_param_cache_limit(model: nn.Module, entries: int) -> None:
    """Bound the derived-parameter cache of ``model`` to ``entries`` (layer, rule-setting) pairs, least
    recently used evicted first: every distinct ``gamma`` a client sends derives one set of weights per
    layer, so without a bound the cache grows with the requests. Default :data:`DEFAULT_CACHE_ENTRIES`."""
    if entries < 1:
        raise ValueError(f"the LRP cache needs at least one entry, not {entries}")
    _CACHE_LIMIT[model] = int(entries)
    cache = _PARAMS.get(model)
    while cache is not None and len(cache) > entries:
        cache.popitem(last=False)


def param_cache_size(model: nn.Module) -> int:
    """Entries in the derived-parameter cache of ``model``."""
    return len(_PARAMS.get(model) or ())


def _version(tensors: list[Any]) -> tuple[Any, ...]:
    return tuple(
        None if t is None else (t.data_ptr(), t._version, t.dtype, t.device, t.shape) for t in tensors
    )


def merged_params(linear: nn.Module, bn: nn.Module | None) -> tuple[torch.Tensor, torch.Tensor | None]:
    """``(W, b)`` of ``linear`` followed by eval-mode ``bn`` (``W * s``, ``(b - mean) * s + beta``)."""
    assert isinstance(linear, LINEAR_TYPES)
    w = linear.weight.detach()
    b = None if linear.bias is None else linear.bias.detach()
    if bn is None:
        return w, b
    assert isinstance(bn, nn.BatchNorm1d | nn.BatchNorm2d)
    mean = bn.running_mean if bn.running_mean is not None else torch.zeros_like(w[:, 0].reshape(-1))
    var = bn.running_var if bn.running_var is not None else torch.ones_like(mean)
    scale = (var + bn.eps).rsqrt()
    shift = -mean * scale
    if bn.weight is not None:
        scale = scale * bn.weight.detach()
        shift = shift * bn.weight.detach()
    if bn.bias is not None:
        shift = shift + bn.bias.detach()
    bias = shift if b is None else b * scale + shift
    if isinstance(linear, nn.ConvTranspose2d):  # weight (in, out / groups, kh, kw): out channel g * out_g + j
        groups, (cin, out_g) = linear.groups, w.shape[:2]
        per_row = scale.view(groups, 1, out_g).expand(groups, cin // groups, out_g).reshape(cin, out_g)
        return w * per_row[:, :, None, None], bias
    return w * scale.view(-1, *([1] * (w.ndim - 1))), bias


def _layer_params(
    model: nn.Module, name: str, op: LinearOp, linear: nn.Module, bn: nn.Module | None, rule: Rule
) -> Params:
    sources: list[Any] = [linear.weight, linear.bias]
    if bn is not None:
        sources += [bn.weight, bn.bias, bn.running_mean, bn.running_var]
    version = (*_version(sources), None if bn is None else bn.eps)
    key = (name, rule.cache_key())
    cache = _PARAMS.setdefault(model, OrderedDict())
    hit = cache.get(key)
    if hit is not None and hit[0] == version:
        cache.move_to_end(key)
        return hit[1]
    with torch.no_grad():
        params = rule.prepare(op, *merged_params(linear, bn))
    cache[key] = (version, params)
    cache.move_to_end(key)
    limit = _CACHE_LIMIT.get(model, DEFAULT_CACHE_ENTRIES)
    while len(cache) > limit:
        cache.popitem(last=False)
    return params


def _unsupported(name: str, module: nn.Module, composite: str) -> UnsupportedLayerError:
    return UnsupportedLayerError(
        f"layer {name!r} ({type(module).__name__}) has no rule in LRP composite {composite!r}; "
        "LRP would silently give a different map, so it is refused"
    )


def _check_parameter_owners(model: nn.Module, leaves: dict[str, nn.Module], composite: str) -> None:
    for name, module in model.named_modules():
        if name in leaves:
            continue
        if any(True for _ in module.parameters(recurse=False)):
            raise _unsupported(name or "<root>", module, composite)


class LrpEngine:
    """Installs LRP rules on a model inside a :class:`ModelPatch` (call :meth:`install` within it)."""

    def __init__(self, composite: str, settings: LrpSettings, first_rule: str = "auto") -> None:
        self.composite_name = composite
        self.composite = COMPOSITES[composite]
        self.settings = settings
        self.first_rule = first_rule
        self.rules: dict[str, Rule] = {}

    def install(self, patch: ModelPatch, model: nn.Module, x: torch.Tensor, mode: ReluMode) -> ModelGraph:
        """Install the rules (a :func:`~xai_serve.explain.backprop.run_backprop` pass does): their
        backward is the LRP rule while ``mode.value == "lrp"`` and the plain gradient otherwise (the
        gradient methods' passes over the same forward)."""
        self.mode = mode
        training = [n for n, m in model.named_modules() if isinstance(m, BATCHNORM_TYPES) and m.training]
        if training:  # checked before the probe pass, which would update running statistics
            raise InvalidArgumentError(
                f"BatchNorm {training[0]!r} is in training mode: LRP merges running statistics; "
                "call model.eval() first"
            )
        disable_inplace(patch, model)
        sums = explicit_residuals(patch, model)
        self.sums: dict[str, nn.Module] = dict(sums)
        graph = analyse(model, x, dict(sums))
        modules: dict[str, nn.Module] = dict(model.named_modules())
        modules.update(sums)
        called = {name: modules[name] for name in graph.order}
        _check_parameter_owners(model, called, self.composite_name)
        merged_into = {linear: bn for bn, linear in graph.merges.items()}
        linears = [n for n in graph.order if isinstance(called[n], LINEAR_TYPES)]
        convs = [n for n in linears if isinstance(called[n], CONV_TYPES)]
        for name, module in called.items():
            if isinstance(module, LINEAR_TYPES):
                info = LayerInfo(
                    name,
                    module,
                    linears.index(name),
                    len(linears),
                    first_conv=bool(convs) and convs[0] == name,
                )
                rule = self.composite(info, self.settings)
                if info.first and self.first_rule != "auto":
                    rule = self.settings.rule(self.first_rule)
                self.rules[name] = rule
                bn = modules[merged_into[name]] if name in merged_into else None
                op = LinearOp(name, module)
                layer = _RuleLayer(op, rule, _layer_params(model, name, op, module, bn, rule), mode)
                patch.replace_forward(module, lambda a, _l=layer: _RuleFunction.apply(a, _l))
            elif isinstance(module, BATCHNORM_TYPES):
                if name in graph.merges:
                    patch.replace_forward(module, lambda a: a)
                else:
                    patch.replace_forward(module, _pass_forward(module, mode))
            elif isinstance(module, NORM_TYPES):
                patch.replace_forward(module, _norm_forward(module, self.settings.stabilizer, mode))
            elif isinstance(module, PASS_TYPES):
                patch.replace_forward(module, _pass_forward(module, mode))
            elif not isinstance(module, GRADIENT_TYPES):
                raise _unsupported(name, module, self.composite_name)
        return graph


def _norm_forward(module: nn.Module, eps: float, mode: ReluMode) -> Any:
    impl = type(module).forward

    def forward(*inputs: torch.Tensor) -> torch.Tensor:
        return _NormOut.apply(impl(module, *(_NormIn.apply(t, mode) for t in inputs)), eps, mode)

    return forward


def _pass_forward(module: nn.Module, mode: ReluMode) -> Any:
    impl = type(module).forward
    return lambda a: _Pass.apply(a, lambda t: impl(module, t), mode, True)


def lrp_settings(params: dict[str, Any], context: ModelContext) -> LrpSettings:
    """The rule settings; the z^B bounds are the normalised black and white pixels of ``context``."""
    return LrpSettings(
        epsilon=params["epsilon"],
        gamma=params["gamma"],
        alpha=params["alpha"],
        beta=params["beta"],
        stabilizer=params["stabilizer"],
        low=context.low,
        high=context.high,
    )


LRP_PARAMS = {
    "composite": ParamSpec(
        "str", "epsilon_plus_flat", "rule map (see the composites table)", choices=tuple(COMPOSITES)
    ),
    "first_rule": ParamSpec(
        "str", "auto", "rule for the first linear layer executed (auto: the composite's)", choices=FIRST_RULES
    ),
    "epsilon": ParamSpec("float", 1e-6, "epsilon of the epsilon rule (0: LRP-0)", minimum=0.0, maximum=1e6),
    "gamma": ParamSpec("float", 0.25, "gamma of the gamma rule", minimum=0.0, maximum=1e6),
    "alpha": ParamSpec("float", 2.0, "alpha of alpha-beta (alpha - beta = 1)", minimum=1.0, maximum=1e6),
    "beta": ParamSpec("float", 1.0, "beta of alpha-beta", minimum=0.0, maximum=1e6),
    "stabilizer": ParamSpec(
        "float", 1e-6, "stabiliser of the other rules and of Norm (> 0)", above=0.0, maximum=1e6
    ),
}


@register_method("lrp", params=LRP_PARAMS, signed=True)
class Lrp(Explainer):
    """Layer-wise relevance propagation with a composite of rules; reports conservation per sample.

    The z^B bounds come from the model context (its input normalisation)."""

    prediction_pass = True  # the forward pass LRP runs is the model's (BatchNorm merged: same up to rounding)

    def setup(self) -> None:
        self.settings = lrp_settings(self.params, self.context)
        if self.params["composite"] == "alpha_beta" or self.params["first_rule"] == "alpha_beta":
            self.settings.rule("alpha_beta")  # validates alpha - beta = 1 now

    def engine(self) -> LrpEngine:
        """The rule engine of these parameters (for a pass of its own or one shared with the gradient
        methods: ``BackpropRequest.lrp``)."""
        return LrpEngine(self.params["composite"], self.settings, self.params["first_rule"])

    def attribute(self, x: torch.Tensor, target: Target = "predicted") -> Attribution:
        return self.finish(run_backprop(self.model, x, target, BackpropRequest(lrp=self.engine())))

    def finish(self, result: BackpropResult) -> Attribution:
        """The attribution from a pass that ran this method's engine (alone or with the gradient
        methods): the map and, per sample, its sum, the explained score, their ratio (conservation) and
        the difference (relevance absorbed)."""
        assert result.relevance is not None
        score = result.selection.scores
        relevance_sum = result.relevance.flatten(1).sum(1)
        stats = {
            "relevance_sum": relevance_sum.tolist(),
            "target_score": score.tolist(),
            "conservation": (relevance_sum / score).tolist(),
            "bias_absorbed": (score - relevance_sum).tolist(),
        }
        classes = result.selection.classes
        labels = None if classes is None else [int(c) for c in classes]
        return Attribution(heatmap=result.relevance, stats=stats, logits=result.logits, classes=labels)
