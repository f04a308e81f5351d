"""Modified-ReLU backpropagation: ``guided_backprop``, ``deconvnet``
(docs/methods.md#guided-backprop, docs/methods.md#deconvnet) and
``layer_guided_backprop`` (docs/methods.md#layer-guided-backprop).

Both are the input gradient of the target score with the backward pass of every ``nn.ReLU`` module
replaced (see :mod:`xai_serve.explain.backprop`): guided backprop ``1[x > 0] * max(g, 0)``,
DeconvNet ``max(g, 0)``. Equal to Captum ``GuidedBackprop`` / ``Deconvolution``.
"""

from __future__ import annotations

import numpy as np
import torch

from xai_serve.errors import InvalidParameterError
from xai_serve.explain.backprop import (
    BackpropExplainer,
    BackpropRequest,
    BackpropResult,
    base_attribution,
    install_relu_modes,
    watch_relus,
)
from xai_serve.explain.canonizers import disable_inplace, explicit_residuals
from xai_serve.explain.layers import LayerChoice
from xai_serve.explain.params import ParamSpec
from xai_serve.explain.passes import ModeSwitch, ReluMode
from xai_serve.explain.patching import ModelPatch, gradient_context, prepare_input
from xai_serve.explain.registry import Attribution, Explainer, register_method
from xai_serve.explain.targets import Target
from xai_serve.models.layers import layer_output


@register_method("guided_backprop", params={}, signed=True)
class GuidedBackprop(BackpropExplainer):
    """Guided backpropagation (Springenberg et al. 2015): gradient with positive-only ReLU backward."""

    def request(self) -> BackpropRequest:
        return BackpropRequest(modes={ReluMode.GUIDED})

    def finish(self, result: BackpropResult) -> Attribution:
        return base_attribution(result, result.input_grads[ReluMode.GUIDED])


@register_method("deconvnet", params={}, signed=True)
class DeconvNet(BackpropExplainer):
    """DeconvNet (Zeiler & Fergus 2014): ReLU backward ``max(g, 0)`` ignoring the forward mask."""

    def request(self) -> BackpropRequest:
        return BackpropRequest(modes={ReluMode.DECONV})

    def finish(self, result: BackpropResult) -> Attribution:
        return base_attribution(result, result.input_grads[ReluMode.DECONV])


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
    """Guided backprop of one filter's activation (docs/methods.md#layer-guided-backprop):
    ``d sum_hw |A[b, filter]| / d x``.

    The forward pass stops at the layer. ``target`` is ignored (the filter is the target).
    """

    def setup(self) -> None:
        self.choice = LayerChoice(self.model, self.params["layer"])

    def attribute(self, x: torch.Tensor, target: Target = "predicted") -> Attribution:
        self.layer_name, self.layer = self.choice.resolve(x)
        with gradient_context(), ModelPatch() as patch:
            disable_inplace(patch, self.model)
            sums = explicit_residuals(patch, self.model)
            switch = install_relu_modes(
                patch, self.model, ModeSwitch(ReluMode.GUIDED), "layer_guided_backprop"
            )
            xin = prepare_input(x)
            with watch_relus(patch, self.model, switch, sums, "layer_guided_backprop"):
                activation = layer_output(self.model, self.layer, xin)
            if activation is None:
                raise InvalidParameterError(
                    f"parameter 'layer': {self.layer_name!r} is not called by the model"
                )
            if not isinstance(activation, torch.Tensor) or activation.ndim < 2:
                raise InvalidParameterError(
                    f"parameter 'layer': {self.layer_name!r} does not output (B, C, ...)"
                )
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

    def unit_contributions(
        self, x: torch.Tensor, target: int, layer: str, attribution: Attribution, row: int
    ) -> np.ndarray | None:
        """The explained filter with the method's objective ``sum_hw |A_f|`` (row ``row``), when
        ``layer`` is the method's layer (the method explains one filter, not a class)."""
        objective = attribution.stats.get("objective")
        if attribution.layer != layer or objective is None:
            return None
        return np.array([[self.params["filter"], float(objective[row])]], dtype=np.float64)
