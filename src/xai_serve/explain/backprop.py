"""One forward pass, several backward passes: the engine of the gradient-based methods.

A :class:`BackpropRequest` says which input gradients are wanted, each under a
:class:`~xai_serve.explain.passes.ReluMode`:

* ``PLAIN``: the ordinary gradient;
* ``GUIDED``: guided backprop (Springenberg et al. 2015): at every ``nn.ReLU`` the backward signal
  passes only where the forward input was positive *and* the signal is positive,
  ``g_in = 1[x > 0] * max(g_out, 0)`` (the same quantity as Captum ``GuidedBackprop``);
* ``DECONV``: DeconvNet (Zeiler & Fergus 2014): ``g_in = max(g_out, 0)``, ignoring the forward mask;

and which layer outputs' gradients are wanted (Grad-CAM, always under the plain mode). The model runs
forward once; each mode is one backward pass over the same graph (``retain_graph`` between them). The
ReLU modes are implemented by replacing each ``nn.ReLU`` module's forward with an autograd function
whose backward reads the current mode, so one graph serves every mode. No backward module hooks are
used, so in-place ReLUs and ReLU modules called several times (torchvision ResNets) work.
``relu`` calls outside modules (``torch.relu`` / ``F.relu`` in a ``forward``) get the same treatment
through :func:`~xai_serve.explain.functional.watch_functional` (no silent plain-gradient fallback).

A :class:`PassExtension` (LRP's rule engine) joins the pass: it installs its rules, the forward pass
becomes its forward and a last backward pass in the ``RULES`` mode gives its relevance.
"""

from __future__ import annotations

import contextlib
from abc import abstractmethod
from dataclasses import dataclass, field
from typing import Any, Protocol

import torch
from torch import nn

from xai_serve.errors import InvalidTargetError
from xai_serve.explain.canonizers import disable_inplace, explicit_residuals
from xai_serve.explain.functional import watch_functional
from xai_serve.explain.passes import GRADIENT_MODES, ModeReLU, ModeSwitch, ReluMode, SharedPassUnavailable
from xai_serve.explain.patching import ModelPatch, gradient_context, prepare_input
from xai_serve.explain.registry import Attribution, Explainer
from xai_serve.explain.relu_only import refuse_non_relu
from xai_serve.explain.targets import Selection, Target, class_indices, select
from xai_serve.models.multi_output import output_names, primary


def install_relu_modes(
    patch: ModelPatch, model: nn.Module, switch: ModeSwitch, method: str = "guided backprop / deconvnet"
) -> ModeSwitch:
    """Replace every ``nn.ReLU``'s forward by the ReLU that follows ``switch``; returns ``switch``.
    Refuses a model with non-ReLU activations (:func:`~xai_serve.explain.relu_only.refuse_non_relu`)."""
    refuse_non_relu(model, method)
    for module in model.modules():
        if type(module) is nn.ReLU:
            patch.replace_forward(module, lambda inp, _s=switch: ModeReLU.apply(inp, _s))
    return switch


def watch_relus(
    patch: ModelPatch, model: nn.Module, switch: ModeSwitch, extra: dict[str, Any], method: str
) -> Any:
    """Context for the forward pass: functional ``relu`` calls outside modules follow ``switch`` too."""
    return watch_functional(
        patch, model, "relu", method=method, relu=lambda t: ModeReLU.apply(t, switch), extra=extra
    )


@dataclass(frozen=True)
class InstalledRules:
    """What a :class:`PassExtension` installed: ``sums``, the hidden modules it added (residual ``Sum``
    modules, known to the functional watch); ``replaced``, the layers whose output under the rules is
    not the model's own (a linear layer merged with its BatchNorm); ``stabilizer``, the epsilon of the
    ``Norm`` rule the watch applies to functional sums and poolings; ``method``, the method's name in
    the watch's refusals. ``input_times_gradient``: the rules are in the gradient form (the attention
    composites), so the rules' backward is seeded with 1 and the relevance is the input times the
    input's gradient; ``watch``: the extension's own watch of the forward pass (instead of the ``lrp``
    policy of :func:`~xai_serve.explain.functional.watch_functional`)."""

    sums: dict[str, nn.Module]
    replaced: frozenset[str]
    stabilizer: float
    method: str
    input_times_gradient: bool = False
    watch: contextlib.AbstractContextManager[Any] | None = None


class PassExtension(Protocol):
    """Rules that ride a backprop pass (LRP's rule engine,
    :class:`~xai_serve.explain.lrp_engine.LrpEngine`): their backward is the rule while the switch is in
    the ``RULES`` mode and the plain gradient otherwise, so the gradient methods' passes run over the
    same forward."""

    def install(
        self, patch: ModelPatch, model: nn.Module, x: torch.Tensor, switch: ModeSwitch
    ) -> InstalledRules:
        """Install the rules on ``model`` inside ``patch`` for input ``x``."""
        ...


@dataclass
class BackpropRequest:
    """Input gradients under ``modes`` (gradient modes), plain gradients of the outputs of ``layers``
    and the relevance of ``extension``'s rules."""

    modes: set[ReluMode] = field(default_factory=set)
    layers: dict[str, nn.Module] = field(default_factory=dict)
    extension: PassExtension | None = None

    def merge(self, other: BackpropRequest) -> None:
        if self.extension is not None and other.extension is not None:
            raise SharedPassUnavailable("one pass serves one pass extension")
        self.modes |= other.modes
        self.layers.update(other.layers)
        self.extension = self.extension if other.extension is None else other.extension

    def gradient_modes(self) -> list[ReluMode]:
        """The requested gradient modes, in the order of their passes."""
        return [m for m in GRADIENT_MODES if m in self.modes]


@dataclass
class BackpropResult:
    x: torch.Tensor  # the input (detached)
    logits: torch.Tensor  # detached model output
    selection: Selection  # detached scores and classes
    input_grads: dict[ReluMode, torch.Tensor]  # mode -> d score / d x
    activations: dict[str, torch.Tensor]  # layer name -> output (detached)
    layer_grads: dict[str, torch.Tensor]  # layer name -> d score / d output
    relevance: torch.Tensor | None = None  # the extension's relevance at the input (request.extension)


def run_backprop(
    model: nn.Module, x: torch.Tensor, target: Target, request: BackpropRequest
) -> BackpropResult:
    """One forward, one backward per requested mode; the model is untouched afterwards.

    With ``request.extension`` (LRP's rule engine) the forward pass is the extension's (LRP: BatchNorm
    merged into the linear layers, the same function up to rounding), the gradient modes run over it
    with every rule in its gradient mode, and a last backward pass in the ``RULES`` mode gives the
    relevance: one forward for LRP and the gradient methods together. It raises
    :class:`~xai_serve.explain.passes.SharedPassUnavailable` where that cannot give each method its own
    answer (a requested layer's output is replaced by the rules, or an operation the rules pass through
    cannot recompute its gradient).
    """
    with gradient_context(), ModelPatch() as patch:
        xin = prepare_input(x)
        switch = ModeSwitch()
        captured: dict[str, torch.Tensor] = {}
        output, rules = _forward(patch, model, xin, request, switch, captured)
        selection = select(output, target, output_names(model))
        gradient_form = rules is not None and rules.input_times_gradient
        grads = _backward(xin, captured, selection, request, switch, gradient_form)
        return BackpropResult(
            x=xin.detach(),
            logits=primary(output).detach(),  # the classifier output (the first of several)
            selection=Selection(selection.scores.detach(), selection.classes),
            input_grads=grads.inputs,
            activations={k: v.detach() for k, v in captured.items()},
            layer_grads=grads.layers,
            relevance=None if grads.relevance is None else grads.relevance.detach(),
        )


def _forward(
    patch: ModelPatch,
    model: nn.Module,
    xin: torch.Tensor,
    request: BackpropRequest,
    switch: ModeSwitch,
    captured: dict[str, torch.Tensor],
) -> tuple[Any, InstalledRules | None]:
    """The forward step: install what the request needs, run the model once, capture the layers."""
    modified = any(m is not ReluMode.PLAIN for m in request.gradient_modes())
    rules = None
    sums: dict[str, nn.Module] = {}
    if request.extension is not None:
        rules = request.extension.install(patch, model, xin, switch)
        if any(name in rules.replaced for name in request.layers):
            raise SharedPassUnavailable(
                "a requested layer's output is replaced by the pass extension's rules"
            )
        sums = rules.sums
    else:
        disable_inplace(patch, model)
        # residual additions made explicit: captured layer outputs are not added to in place, and the
        # ReLU modes' watch knows the Sum modules; a plain input gradient needs neither
        if request.layers or modified:
            sums = dict(explicit_residuals(patch, model))
    if modified:
        install_relu_modes(patch, model, switch, _relu_methods(request))
    for name, layer in request.layers.items():
        patch.forward_hook(layer, _capture(captured, name))
    if not request.gradient_modes() and rules is None:  # layer gradients only (Grad-CAM): stop at the layers
        xin.requires_grad_(False)
    with _watch(patch, model, request, rules, sums, switch, modified):
        output = model(xin)
    missing = [name for name in request.layers if name not in captured]
    if missing:
        raise RuntimeError(f"layer {missing[0]!r} was not called in the forward pass")
    return output, rules


def _relu_methods(request: BackpropRequest) -> str:
    """The methods of the request's modified ReLU modes, for refusals."""
    names = {ReluMode.GUIDED: "guided_backprop", ReluMode.DECONV: "deconvnet"}
    return "/".join(names[m] for m in request.gradient_modes() if m in names)


def _watch(
    patch: ModelPatch,
    model: nn.Module,
    request: BackpropRequest,
    rules: InstalledRules | None,
    sums: dict[str, nn.Module],
    switch: ModeSwitch,
    modified: bool,
) -> contextlib.AbstractContextManager[Any]:
    """The functional watch of the forward pass: the rules' (functional relu calls follow the ReLU mode),
    the ReLU modes' (no silent plain gradient), or none for plain gradients."""
    if rules is not None and rules.watch is not None:
        return rules.watch
    if rules is not None:
        relu = (lambda t: ModeReLU.apply(t, switch)) if modified else None
        return watch_functional(
            patch,
            model,
            "lrp",
            method=rules.method,
            relu=relu,
            extra=sums,
            eps=rules.stabilizer,
            switch=switch,
        )
    if modified:
        names = sorted(m.value for m in request.gradient_modes() if m is not ReluMode.PLAIN)
        return watch_relus(patch, model, switch, sums, "/".join(names))
    return contextlib.nullcontext()


def _passes(request: BackpropRequest) -> list[ReluMode]:
    """The backward passes in order: the gradient modes (a plain one first when layers are requested),
    then the rules (last: their backward releases what the rules saved)."""
    passes = request.gradient_modes()
    if request.layers and ReluMode.PLAIN not in passes:
        passes.insert(0, ReluMode.PLAIN)
    if request.extension is not None:
        passes.append(ReluMode.RULES)
    return passes


def _seed(selection: Selection, mode: ReluMode, gradient_form: bool = False) -> torch.Tensor:
    """The seed step: the scalar a backward pass differentiates. The gradient modes: the summed target
    scores (each sample's gradient of its own score). The rules: ``sum(s * stop_grad(s))``, which seeds
    each sample's backward with its own score, like ``grad_outputs=s`` but without torch's lazy sympy
    import on a worker's first LRP request. Rules in the gradient form: the summed scores too."""
    scores = selection.scores
    if mode is ReluMode.RULES and not gradient_form:
        return (scores * scores.detach()).sum()
    return scores.sum()


@dataclass
class _Gradients:
    inputs: dict[ReluMode, torch.Tensor] = field(default_factory=dict)
    layers: dict[str, torch.Tensor] = field(default_factory=dict)
    relevance: torch.Tensor | None = None


def _backward(
    xin: torch.Tensor,
    captured: dict[str, torch.Tensor],
    selection: Selection,
    request: BackpropRequest,
    switch: ModeSwitch,
    gradient_form: bool = False,
) -> _Gradients:
    """The backward step: one pass per mode over the one graph (``retain_graph`` between them)."""
    out = _Gradients()
    passes = _passes(request)
    for i, mode in enumerate(passes):
        switch.mode = mode
        retain = i < len(passes) - 1
        seed = _seed(selection, mode, gradient_form)
        if mode is ReluMode.RULES:
            (out.relevance,) = torch.autograd.grad(seed, xin, retain_graph=retain)
            if gradient_form:
                out.relevance = xin.detach() * out.relevance
            continue
        wants_input = mode in request.modes
        layer_names = list(request.layers) if mode is ReluMode.PLAIN else []
        inputs = ([xin] if wants_input else []) + [captured[n] for n in layer_names]
        grads = torch.autograd.grad(seed, inputs, retain_graph=retain, allow_unused=True)
        grads = tuple(torch.zeros_like(t) if g is None else g for g, t in zip(grads, inputs, strict=True))
        if wants_input:
            out.inputs[mode] = grads[0]
        for name, g in zip(layer_names, grads[int(wants_input) :], strict=True):
            out.layers[name] = g
    return out


def _capture(store: dict[str, torch.Tensor], name: str) -> Any:
    def hook(module: nn.Module, inputs: Any, output: Any) -> None:
        if not isinstance(output, torch.Tensor):
            raise TypeError(f"layer {name!r} returns {type(output).__name__}, not a tensor")
        if not output.requires_grad:  # frozen model and an input without grad: start the graph here
            output.requires_grad_(True)
        store.setdefault(name, output)

    return hook


class BackpropExplainer(Explainer):
    """A method computed from one :func:`run_backprop` pass; :func:`~xai_serve.explain.explain` merges the
    requests of several such methods into one forward pass."""

    prediction_pass = True

    def prepare(self, x: torch.Tensor) -> None:
        """Resolve what depends on the input shape (a default layer) before :meth:`request`."""

    @abstractmethod
    def request(self) -> BackpropRequest:
        """What this method needs from the shared pass."""

    @abstractmethod
    def finish(self, result: BackpropResult) -> Attribution:
        """The attribution, from a pass that served at least :meth:`request`."""

    def attribute(self, x: torch.Tensor, target: Target = "predicted") -> Attribution:
        self.prepare(x)
        return self.finish(run_backprop(self.model, x, target, self.request()))


def base_attribution(result: BackpropResult, heatmap: torch.Tensor) -> Attribution:
    """An Attribution carrying the pass's logits and classes."""
    classes = result.selection.classes
    return Attribution(
        heatmap=heatmap,
        logits=result.logits,
        classes=None if classes is None else [int(c) for c in classes],
        stats={"target_score": result.selection.scores.tolist()},
    )


def run_backprop_targets(
    model: nn.Module, x: torch.Tensor, classes: torch.Tensor, request: BackpropRequest
) -> list[BackpropResult]:
    """Several class targets per sample from ONE forward pass: ``classes`` (B, K) -> K results, result
    ``k`` as :func:`run_backprop` gives for target ``classes[:, k]`` (equal up to float rounding).

    The gradient modes and the layer gradients run one batched backward pass per mode over the K
    seeds (``torch.autograd.grad(..., is_grads_batched=True)``; where an operation of the model has no
    batching rule, K backward passes over the same graph instead). The rules of a pass extension (LRP)
    run K backward passes over the one forward, keeping what the rules saved until the last.
    """
    if classes.ndim != 2 or classes.shape[0] != x.shape[0] or classes.shape[1] < 1:
        raise InvalidTargetError(
            f"several targets need a (batch, K) class table, got {tuple(classes.shape)} "
            f"for {x.shape[0]} samples"
        )
    k_count = classes.shape[1]
    with gradient_context(), ModelPatch() as patch:
        xin = prepare_input(x)
        switch = ModeSwitch()
        captured: dict[str, torch.Tensor] = {}
        output, rules = _forward(patch, model, xin, request, switch, captured)
        logits = primary(output)
        columns = [class_indices(logits, [int(c) for c in classes[:, k]]) for k in range(k_count)]
        scores = torch.stack([logits.gather(1, c[:, None])[:, 0] for c in columns if c is not None], dim=1)
        gradient_form = rules is not None and rules.input_times_gradient
        grads = _backward_targets(xin, captured, scores, request, switch, gradient_form)
        activations = {k: v.detach() for k, v in captured.items()}
        return [
            BackpropResult(
                x=xin.detach(),
                logits=logits.detach(),
                selection=Selection(scores[:, k].detach(), columns[k]),
                input_grads={mode: g[k] for mode, g in grads.inputs.items()},
                activations=activations,
                layer_grads={name: g[k] for name, g in grads.layers.items()},
                relevance=None if grads.relevance is None else grads.relevance[k].detach(),
            )
            for k in range(k_count)
        ]


def _batched_grad(scores: torch.Tensor, inputs: list[torch.Tensor], retain: bool) -> tuple[torch.Tensor, ...]:
    """d scores[:, k].sum() / d inputs for every k, stacked (K, ...): one batched backward pass, or K
    passes where the model has an operation without a batching rule."""
    k_count = scores.shape[1]
    seeds = torch.eye(k_count, dtype=scores.dtype, device=scores.device)[:, None, :].expand(
        k_count, *scores.shape
    )
    try:
        return torch.autograd.grad(
            scores, inputs, seeds, retain_graph=True, allow_unused=True, is_grads_batched=True
        )
    except RuntimeError:  # no batching rule for an operation of this model: one pass per target
        per_target = [
            torch.autograd.grad(
                scores[:, k].sum(), inputs, retain_graph=retain or k < k_count - 1, allow_unused=True
            )
            for k in range(k_count)
        ]
        return tuple(
            None if parts[0] is None else torch.stack(parts)  # type: ignore[misc]
            for parts in zip(*per_target, strict=True)
        )


def _backward_targets(
    xin: torch.Tensor,
    captured: dict[str, torch.Tensor],
    scores: torch.Tensor,
    request: BackpropRequest,
    switch: ModeSwitch,
    gradient_form: bool = False,
) -> _Gradients:
    """:func:`_backward` for (B, K) scores: each gradient of shape (K, *shape)."""
    out = _Gradients()
    passes = _passes(request)
    k_count = scores.shape[1]
    for i, mode in enumerate(passes):
        switch.mode = mode
        retain = i < len(passes) - 1
        if mode is ReluMode.RULES:
            relevance = []
            for k in range(k_count):
                switch.keep_saved = k < k_count - 1
                seed = _seed(Selection(scores[:, k], None), mode, gradient_form)
                (r,) = torch.autograd.grad(seed, xin, retain_graph=retain or k < k_count - 1)
                relevance.append(xin.detach() * r if gradient_form else r)
            switch.keep_saved = False
            out.relevance = torch.stack(relevance)
            continue
        wants_input = mode in request.modes
        layer_names = list(request.layers) if mode is ReluMode.PLAIN else []
        inputs = ([xin] if wants_input else []) + [captured[n] for n in layer_names]
        grads = _batched_grad(scores, inputs, retain)
        grads = tuple(
            torch.zeros((k_count, *t.shape), dtype=t.dtype, device=t.device) if g is None else g
            for g, t in zip(grads, inputs, strict=True)
        )
        if wants_input:
            out.inputs[mode] = grads[0]
        for name, g in zip(layer_names, grads[int(wants_input) :], strict=True):
            out.layers[name] = g
    return out
