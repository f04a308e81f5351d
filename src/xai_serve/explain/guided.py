"""Modified-ReLU backpropagation: ``guided_backprop``, ``deconvnet`` (seed B.2) and
``layer_guided_backprop`` (seed B.3).

Both are the input gradient of the target score with the backward pass of every ``nn.ReLU`` module
replaced (see :mod:`xai_serve.explain.backprop`): guided backprop ``1[x > 0] * max(g, 0)``,
DeconvNet ``max(g, 0)``. Equal to Captum ``GuidedBackprop`` / ``Deconvolution``.
"""

from __future__ import annotations

import contextlib
from typing import Any

import torch
from torch import nn

from xai_serve.errors import InvalidParameterError
from xai_serve.explain.backprop import (
    BackpropExplainer,
    BackpropRequest,
    BackpropResult,
    ReluMode,
    base_attribution,
    install_relu_modes,
    watch_relus,
)
from xai_serve.explain.canonizers import disable_inplace, explicit_residuals
from xai_serve.explain.layers import LayerChoice
from xai_serve.explain.params import ParamSpec
from xai_serve.explain.patching import ModelPatch, gradient_context, prepare_input
from xai_serve.explain.registry import Attribution, Explainer, register_method
from xai_serve.explain.targets import Target


@register_method("guided_backprop", params={}, signed=True)
class GuidedBackprop(BackpropExplainer):
    """Guided backpropagation (Springenberg et al. 2015): gradient with positive-only ReLU backward."""

    def request(self) -> BackpropRequest:
        return BackpropRequest(modes={"guided"})

    def finish(self, result: BackpropResult) -> Attribution:
        return base_attribution(result, result.input_grads["guided"])


@register_method("deconvnet", params={}, signed=True)
class DeconvNet(BackpropExplainer):
    """DeconvNet (Zeiler & Fergus 2014): ReLU backward ``max(g, 0)`` ignoring the forward mask."""

    def request(self) -> BackpropRequest:
        return BackpropRequest(modes={"deconv"})

    def finish(self, result: BackpropResult) -> Attribution:
        return base_attribution(result, result.input_grads["deconv"])


class _Stop(Exception):
    """Raised by the capture hook to end the forward pass at the chosen layer."""


@register_method(
    "layer_guided_backprop",
    params={
        "layer": ParamSpec(
            "layer", None, "module name or features index (default: the last module with output > 1x1)"
        ),
        "filter": ParamSpec("int", 0, "channel (filter) of the layer output", minimum=0),
    },
    signed=True,
    targeted=False,
)
class LayerGuidedBackprop(Explainer):
    """Guided backprop of one filter's activation (seed B.3): ``d sum_hw |A[b, filter]| / d x``.

    The forward pass stops at the layer. ``target`` is ignored (the filter is the target).
    """

    def setup(self) -> None:
        self.choice = LayerChoice(self.model, self.params["layer"])

    def attribute(self, x: torch.Tensor, target: Target = "predicted") -> Attribution:
        captured: list[torch.Tensor] = []
        self.layer_name, self.layer = self.choice.resolve(x)

        def hook(module: nn.Module, inputs: Any, output: Any) -> None:
            if not isinstance(output, torch.Tensor) or output.ndim < 2:
                raise InvalidParameterError(
                    f"parameter 'layer': {self.layer_name!r} does not output (B, C, ...)"
                )
            captured.append(output)
            raise _Stop

        with gradient_context(), ModelPatch() as patch:
            disable_inplace(patch, self.model)
            sums = explicit_residuals(patch, self.model)
            mode = install_relu_modes(patch, self.model, ReluMode("guided"))
            patch.forward_hook(self.layer, hook)
            xin = prepare_input(x)
            watch = watch_relus(patch, self.model, mode, sums, "layer_guided_backprop")
            with contextlib.suppress(_Stop), watch:
                self.model(xin)
            if not captured:
                raise InvalidParameterError(
                    f"parameter 'layer': {self.layer_name!r} is not called by the model"
                )
            activation = captured[0]
            channels = activation.shape[1]
            f = self.params["filter"]
            if f >= channels:
                raise InvalidParameterError(
                    f"parameter 'filter': {f} is out of range for {channels} channels of {self.layer_name!r}"
                )
            objective = activation[:, f].abs().flatten(1).sum(1)
            (grad,) = torch.autograd.grad(objective.sum(), xin)
        stats = {"objective": objective.detach().tolist()}
        return Attribution(heatmap=grad, stats=stats, layer=self.layer_name)
