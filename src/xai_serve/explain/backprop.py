"""One forward pass, several backward passes: the engine of the gradient-based methods.

A :class:`BackpropRequest` says which input gradients are wanted, each under a ReLU *mode*:

* ``"plain"``: the ordinary gradient;
* ``"guided"``: guided backprop (Springenberg et al. 2015): at every ``nn.ReLU`` the backward signal
  passes only where the forward input was positive *and* the signal is positive,
  ``g_in = 1[x > 0] * max(g_out, 0)`` (the same quantity as Captum ``GuidedBackprop``);
* ``"deconv"``: DeconvNet (Zeiler & Fergus 2014): ``g_in = max(g_out, 0)``, ignoring the forward mask;

and which layer outputs' gradients are wanted (Grad-CAM, always under the plain mode). The model runs
forward once; each mode is one backward pass over the same graph (``retain_graph`` between them). The
ReLU modes are implemented by replacing each ``nn.ReLU`` module's forward with an autograd function
whose backward reads the current mode, so one graph serves every mode. No backward module hooks are
used, so in-place ReLUs and ReLU modules called several times (torchvision ResNets) work.
``relu`` calls outside modules (``torch.relu`` / ``F.relu`` in a ``forward``) get the same treatment
through :func:`~xai_serve.explain.functional.watch_functional` (no silent plain-gradient fallback).
"""

from __future__ import annotations

from abc import abstractmethod
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn

from xai_serve.explain.canonizers import disable_inplace, explicit_residuals
from xai_serve.explain.functional import watch_functional
from xai_serve.explain.patching import ModelPatch, gradient_context, prepare_input
from xai_serve.explain.registry import Attribution, Explainer
from xai_serve.explain.targets import Selection, Target, select
from xai_serve.models.multi_output import output_names, primary

MODES = ("plain", "guided", "deconv")


class SharedPassUnavailable(RuntimeError):
    """A pass shared between LRP and the gradient methods cannot serve this model or request (the
    caller runs separate passes instead)."""


class ReluMode:
    """The current backward mode of the replaced ReLUs (one of :data:`MODES`, or ``"lrp"``: LRP's
    rules in a pass shared with LRP, where the ReLU keeps its own gradient)."""

    def __init__(self, value: str = "plain") -> None:
        self.value = value


class _ModeReLU(torch.autograd.Function):
    @staticmethod
    def forward(ctx: Any, x: torch.Tensor, mode: ReluMode) -> torch.Tensor:
        out = torch.relu(x)
        ctx.save_for_backward(out)
        ctx.mode = mode
        return out

    @staticmethod
    def backward(ctx: Any, grad: torch.Tensor) -> tuple[torch.Tensor, None]:
        (out,) = ctx.saved_tensors
        mode = ctx.mode.value
        if mode == "deconv":
            return grad.clamp(min=0), None
        if mode == "guided":
            grad = grad.clamp(min=0)
        return torch.ops.aten.threshold_backward(grad, out, 0), None  # grad * (out > 0), as relu's own


def install_relu_modes(patch: ModelPatch, model: nn.Module, mode: ReluMode) -> ReluMode:
    """Replace every ``nn.ReLU``'s forward by the ReLU that follows ``mode``; returns ``mode``."""
    for module in model.modules():
        if type(module) is nn.ReLU:
            patch.replace_forward(module, lambda inp, _m=mode: _ModeReLU.apply(inp, _m))
    return mode


def watch_relus(
    patch: ModelPatch, model: nn.Module, mode: ReluMode, extra: dict[str, Any], method: str
) -> Any:
    """Context for the forward pass: functional ``relu`` calls outside modules follow ``mode`` too."""
    return watch_functional(
        patch, model, "relu", method=method, relu=lambda t: _ModeReLU.apply(t, mode), extra=extra
    )


@dataclass
class BackpropRequest:
    """Input gradients under ``modes`` and plain gradients of the outputs of ``layers``."""

    modes: set[str] = field(default_factory=set)
    layers: dict[str, nn.Module] = field(default_factory=dict)
    lrp: Any = None  # an LrpEngine: LRP relevance from the same forward pass (xai_serve.explain.lrp)

    def merge(self, other: BackpropRequest) -> None:
        if self.lrp is not None and other.lrp is not None:
            raise SharedPassUnavailable("one pass serves one LRP configuration")
        self.modes |= other.modes
        self.layers.update(other.layers)
        self.lrp = self.lrp if other.lrp is None else other.lrp


@dataclass
class BackpropResult:
    x: torch.Tensor  # the input (detached)
    logits: torch.Tensor  # detached model output
    selection: Selection  # detached scores and classes
    input_grads: dict[str, torch.Tensor]  # mode -> d score / d x
    activations: dict[str, torch.Tensor]  # layer name -> output (detached)
    layer_grads: dict[str, torch.Tensor]  # layer name -> d score / d output
    relevance: torch.Tensor | None = None  # LRP relevance at the input (request.lrp)


def run_backprop(
    model: nn.Module, x: torch.Tensor, target: Target, request: BackpropRequest
) -> BackpropResult:
    """One forward, one backward per requested mode; the model is untouched afterwards.

    With ``request.lrp`` (an LRP engine) the forward pass is LRP's (BatchNorm merged into the linear
    layers: the same function up to rounding), the gradient modes run over it with every LRP rule in
    its gradient mode, and a last backward pass in the ``"lrp"`` mode gives the relevance: one forward
    for LRP and the gradient methods together. It raises :class:`SharedPassUnavailable` where that
    cannot give each method its own answer (a requested layer is a linear layer whose BatchNorm LRP
    merges, or an operation LRP passes through cannot recompute its gradient).
    """
    modes = [m for m in MODES if m in request.modes]
    lrp = request.lrp
    with gradient_context(), ModelPatch() as patch:
        xin = prepare_input(x)
        modified = bool(set(modes) - {"plain"})
        mode = ReluMode()
        if lrp is not None:
            graph = lrp.install(patch, model, xin, mode)
            sums = lrp.sums
            merged = set(graph.merges.values())
            if any(name in merged for name in request.layers):
                raise SharedPassUnavailable("a requested layer's output is merged with its BatchNorm by LRP")
        else:
            disable_inplace(patch, model)
            # residual additions made explicit: captured layer outputs are not added to in place, and the
            # ReLU modes' watch knows the Sum modules; a plain input gradient needs neither
            sums = explicit_residuals(patch, model) if (request.layers or modified) else {}
        if modified:
            install_relu_modes(patch, model, mode)
        captured: dict[str, torch.Tensor] = {}
        for name, layer in request.layers.items():
            patch.forward_hook(layer, _capture(captured, name))
        if not modes and lrp is None:  # layer gradients only (Grad-CAM): autograd stops at the layers
            xin.requires_grad_(False)
        if lrp is not None:  # LRP's watch; functional relu calls follow the ReLU mode
            relu = (lambda t: _ModeReLU.apply(t, mode)) if modified else None
            eps = lrp.settings.stabilizer
            with watch_functional(
                patch, model, "lrp", method="lrp", relu=relu, extra=sums, eps=eps, mode=mode
            ):
                output = model(xin)
        elif modified:  # functional relu calls get the mode too (no silent plain gradient)
            with watch_relus(patch, model, mode, sums, "/".join(sorted(set(modes) - {"plain"}))):
                output = model(xin)
        else:
            output = model(xin)
        logits = primary(output)  # the classifier output (the first of several)
        missing = [name for name in request.layers if name not in captured]
        if missing:
            raise RuntimeError(f"layer {missing[0]!r} was not called in the forward pass")
        selection = select(output, target, output_names(model))
        total = selection.scores.sum()
        input_grads: dict[str, torch.Tensor] = {}
        layer_grads: dict[str, torch.Tensor] = {}
        passes: list[str] = list(modes)
        if request.layers and "plain" not in passes:
            passes.insert(0, "plain")
        if lrp is not None:
            passes.append("lrp")  # last: LRP's backward releases what its rules saved
        relevance = None
        for i, current in enumerate(passes):
            mode.value = current
            retain = i < len(passes) - 1
            if current == "lrp":
                # sum(s * stop_grad(s)) seeds each sample's backward with its own score, like
                # grad_outputs=s but without torch's lazy sympy import on a worker's first LRP request
                scores = selection.scores
                (relevance,) = torch.autograd.grad((scores * scores.detach()).sum(), xin, retain_graph=retain)
                continue
            wants_input = current in modes
            layer_names = list(request.layers) if current == "plain" else []
            inputs = ([xin] if wants_input else []) + [captured[n] for n in layer_names]
            grads = torch.autograd.grad(total, inputs, retain_graph=retain, allow_unused=True)
            grads = tuple(torch.zeros_like(t) if g is None else g for g, t in zip(grads, inputs, strict=True))
            if wants_input:
                input_grads[current] = grads[0]
            for name, g in zip(layer_names, grads[int(wants_input) :], strict=True):
                layer_grads[name] = g
        return BackpropResult(
            x=xin.detach(),
            logits=logits.detach(),
            selection=Selection(selection.scores.detach(), selection.classes),
            input_grads=input_grads,
            activations={k: v.detach() for k, v in captured.items()},
            layer_grads=layer_grads,
            relevance=None if relevance is None else relevance.detach(),
        )


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
