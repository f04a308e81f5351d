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
from xai_serve.explain.targets import Selection, Target, output_names, primary, select

MODES = ("plain", "guided", "deconv")


class ReluMode:
    """The current backward mode of the replaced ReLUs (one of :data:`MODES`)."""

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


def install_relu_modes(patch: ModelPatch, model: nn.Module, value: str = "plain") -> ReluMode:
    """Replace every ``nn.ReLU``'s forward by the mode-switchable ReLU; returns the mode switch."""
    mode = ReluMode(value)
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

    def merge(self, other: BackpropRequest) -> None:
        self.modes |= other.modes
        self.layers.update(other.layers)


@dataclass
class BackpropResult:
    x: torch.Tensor  # the input (detached)
    logits: torch.Tensor  # detached model output
    selection: Selection  # detached scores and classes
    input_grads: dict[str, torch.Tensor]  # mode -> d score / d x
    activations: dict[str, torch.Tensor]  # layer name -> output (detached)
    layer_grads: dict[str, torch.Tensor]  # layer name -> d score / d output


def run_backprop(
    model: nn.Module, x: torch.Tensor, target: Target, request: BackpropRequest
) -> BackpropResult:
    """One forward, one backward per requested mode; the model is untouched afterwards."""
    modes = [m for m in MODES if m in request.modes]
    with gradient_context(), ModelPatch() as patch:
        disable_inplace(patch, model)
        sums = explicit_residuals(patch, model)
        modified = bool(set(modes) - {"plain"})
        mode = install_relu_modes(patch, model) if modified else ReluMode()
        captured: dict[str, torch.Tensor] = {}
        for name, layer in request.layers.items():
            patch.forward_hook(layer, _capture(captured, name))
        xin = prepare_input(x)
        if not modes:  # layer gradients only (Grad-CAM): autograd stops at the layers
            xin.requires_grad_(False)
        if modified:  # functional relu calls get the mode too (no silent plain gradient)
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
        for i, current in enumerate(passes):
            mode.value = current
            wants_input = current in modes
            layer_names = list(request.layers) if current == "plain" else []
            inputs = ([xin] if wants_input else []) + [captured[n] for n in layer_names]
            grads = torch.autograd.grad(total, inputs, retain_graph=i < len(passes) - 1, allow_unused=True)
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
