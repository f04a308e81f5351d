"""The rule engine of layer-wise relevance propagation (Bach et al. 2015; Montavon et al. 2019).

Mechanism: for the duration of a call every relevant module's ``forward`` is replaced (through a
:class:`~xai_serve.explain.patching.ModelPatch`) by one whose autograd backward *is* the LRP rule, and
the "gradient" flowing backward is the relevance itself (Zennit's convention): the initial relevance is
the target score at the target output (one-hot times logit, no softmax) and the input "gradient" is the
relevance map. One forward and one backward pass; rules that need modified forwards (z+, gamma,
alpha-beta, z^B) compute them only for the layers that use them, and derived weights (BatchNorm merged,
``W+``, ...) are cached per model until a parameter changes, in the caller's bounded
:class:`~xai_serve.explain.param_cache.DerivedParamCache`. :class:`LrpEngine` is a
:class:`~xai_serve.explain.backprop.PassExtension`: a :func:`~xai_serve.explain.backprop.run_backprop`
pass installs it, alone (method ``lrp``: :mod:`xai_serve.explain.lrp`) or with the gradient methods.

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
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from xai_serve.errors import InvalidArgumentError, UnsupportedLayerError
from xai_serve.explain.backprop import InstalledRules
from xai_serve.explain.canonizers import disable_inplace, explicit_residuals
from xai_serve.explain.composites import COMPOSITES, LayerInfo, LrpSettings
from xai_serve.explain.graph import BATCHNORM_TYPES, CONV_TYPES, LINEAR_TYPES, analyse
from xai_serve.explain.param_cache import DerivedParamCache
from xai_serve.explain.passes import ModeSwitch, NormIn, NormOut, PassThrough, RuleFunction, RuleLayer
from xai_serve.explain.patching import ModelPatch
from xai_serve.explain.rules import LinearOp, Params, Rule
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


class _RuleLayer(RuleLayer):
    """A linear layer (``op``) under an LRP ``rule`` with its derived ``params``."""

    def __init__(self, op: LinearOp, rule: Rule, params: Params, switch: ModeSwitch) -> None:
        super().__init__(switch)
        self.op, self.rule, self.params = op, rule, params

    def forward(self, a: torch.Tensor) -> tuple[torch.Tensor, Any]:
        return self.rule.forward(self.op, a, self.params)

    def relevance(self, saved: Any, relevance: torch.Tensor) -> torch.Tensor:
        return self.rule.backward(self.op, self.params, saved, relevance)

    def gradient(self, grad: torch.Tensor, shape: torch.Size) -> torch.Tensor:
        # W^T g with the (BatchNorm-merged) weights
        return self.op.vjp(grad, self.params["w"], shape)


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
    cache: DerivedParamCache,
    model: nn.Module,
    name: str,
    op: LinearOp,
    linear: nn.Module,
    bn: nn.Module | None,
    rule: Rule,
) -> Params:
    sources: list[Any] = [linear.weight, linear.bias]
    if bn is not None:
        sources += [bn.weight, bn.bias, bn.running_mean, bn.running_var]
    version = (*_version(sources), None if bn is None else bn.eps)

    def derive() -> Params:
        with torch.no_grad():
            return rule.prepare(op, *merged_params(linear, bn))

    return cache.get(model, (name, rule.cache_key()), version, derive)


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
    """Installs LRP rules on a model inside a :class:`ModelPatch` (a
    :class:`~xai_serve.explain.backprop.PassExtension`); derived weights live in ``cache``."""

    def __init__(
        self, composite: str, settings: LrpSettings, cache: DerivedParamCache, first_rule: str = "auto"
    ) -> None:
        self.cache = cache
        self.composite_name = composite
        self.composite = COMPOSITES[composite]
        self.settings = settings
        self.first_rule = first_rule
        self.rules: dict[str, Rule] = {}

    def install(
        self, patch: ModelPatch, model: nn.Module, x: torch.Tensor, switch: ModeSwitch
    ) -> InstalledRules:
        """Install the rules (a :func:`~xai_serve.explain.backprop.run_backprop` pass does): their
        backward is the LRP rule while the switch is in the ``RULES`` mode and the plain gradient
        otherwise (the gradient methods' passes over the same forward)."""
        training = [n for n, m in model.named_modules() if isinstance(m, BATCHNORM_TYPES) and m.training]
        if training:  # checked before the probe pass, which would update running statistics
            raise InvalidArgumentError(
                f"BatchNorm {training[0]!r} is in training mode: LRP merges running statistics; "
                "call model.eval() first"
            )
        disable_inplace(patch, model)
        sums = explicit_residuals(patch, model)
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
                params = _layer_params(self.cache, model, name, op, module, bn, rule)
                layer = _RuleLayer(op, rule, params, switch)
                patch.replace_forward(module, lambda a, _l=layer: RuleFunction.apply(a, _l))
            elif isinstance(module, BATCHNORM_TYPES):
                if name in graph.merges:
                    patch.replace_forward(module, lambda a: a)
                else:
                    patch.replace_forward(module, _pass_forward(module, switch))
            elif isinstance(module, NORM_TYPES):
                patch.replace_forward(module, _norm_forward(module, self.settings.stabilizer, switch))
            elif isinstance(module, PASS_TYPES):
                patch.replace_forward(module, _pass_forward(module, switch))
            elif not isinstance(module, GRADIENT_TYPES):
                raise _unsupported(name, module, self.composite_name)
        return InstalledRules(dict(sums), frozenset(graph.merges.values()), self.settings.stabilizer, "lrp")


def _norm_forward(module: nn.Module, eps: float, switch: ModeSwitch) -> Any:
    impl = type(module).forward

    def forward(*inputs: torch.Tensor) -> torch.Tensor:
        return NormOut.apply(impl(module, *(NormIn.apply(t, switch) for t in inputs)), eps, switch)

    return forward


def _pass_forward(module: nn.Module, switch: ModeSwitch) -> Any:
    impl = type(module).forward
    return lambda a: PassThrough.apply(a, lambda t: impl(module, t), switch, True)
