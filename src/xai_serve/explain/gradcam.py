"""Grad-CAM (Selvaraju et al. 2017) and guided Grad-CAM.

``cam = sum_k mean_hw(d score / d A_k) * A_k`` at a layer (any module by name; default: the last
module whose output still has spatial extent > 1x1, see :func:`~xai_serve.explain.layers.spatial_layer`,
or for a vision transformer the last block's input normalisation, see :mod:`xai_serve.explain.tokens`,
whose ``(B, N, C)`` tokens lose their class token and are reshaped to the patch grid; the attribution
names the layer used and, for tokens, the reshape), ReLU'd unless ``relu=false``, upsampled to the input size
(bilinear by default, ``align_corners=False`` like Captum's ``LayerAttribution.interpolate``) and
repeated over the input channels so the map is shaped like the input. The backward pass stops at the
layer (Captum ``LayerGradCam`` semantics), so Grad-CAM alone costs about half an input gradient.
Guided Grad-CAM is the guided-backprop map times the upsampled, ReLU'd Grad-CAM map (Captum
``GuidedGradCam``, whose default interpolation is ``nearest``).

The General Pattern Theory code used Grad-CAM on a 1x1 input-adapter conv at full resolution: name that layer
to reproduce it (the map is then a signed scalar times the input; ``relu=false`` as in Captum's default).
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from xai_serve.errors import InvalidParameterError
from xai_serve.explain.backprop import (
    BackpropExplainer,
    BackpropRequest,
    BackpropResult,
    base_attribution,
    run_backprop,
)
from xai_serve.explain.layers import LayerChoice
from xai_serve.explain.params import ParamSpec
from xai_serve.explain.passes import ReluMode
from xai_serve.explain.registry import Attribution, register_method
from xai_serve.explain.tokens import as_map

_LAYER = ParamSpec(
    "layer", None, "module name or features index (default: the last module with output larger than 1x1)"
)
_INTERP = ("bilinear", "nearest", "bicubic")


def channel_weights(grad: torch.Tensor) -> torch.Tensor:
    """Grad-CAM's channel weights ``alpha_k = mean_hw(d score / d A_k)``, (B, C, 1, 1)."""
    return grad.mean(dim=(2, 3), keepdim=True)


def layer_cam(activation: torch.Tensor, grad: torch.Tensor, relu: bool) -> torch.Tensor:
    """Grad-CAM at layer resolution (B, 1, h, w) from the layer output and its gradient."""
    if activation.ndim != 4:
        raise InvalidParameterError(
            f"parameter 'layer': Grad-CAM needs a (B, C, H, W) layer output, got {tuple(activation.shape)}"
        )
    cam = (channel_weights(grad) * activation).sum(dim=1, keepdim=True)
    return cam.clamp(min=0) if relu else cam


def channel_contributions(model: nn.Module, x: torch.Tensor, target: int, layer: str) -> np.ndarray:
    """Each channel's share of the Grad-CAM map of ``target`` at ``layer`` for one input ``x`` (C, H, W):
    (channel, ``alpha_k * mean_hw(A_k)``) rows. They sum to the spatial mean of the un-ReLU'd map (the
    units' evidence of :class:`~xai_serve.explain.units.UnitContributions`); no rows when the layer's
    output is not (B, C, H, W)."""
    request = BackpropRequest(layers={layer: model.get_submodule(layer)})
    result = run_backprop(model, x[None], int(target), request)
    act, grad = result.activations[layer], result.layer_grads[layer]
    if act.ndim != 4:
        return np.zeros((0, 2))
    contrib = (channel_weights(grad)[0, :, 0, 0] * act[0].mean(dim=(1, 2))).double().cpu().numpy()
    return np.stack([np.arange(contrib.size, dtype=np.float64), contrib], axis=1)


def upsample(cam: torch.Tensor, like: torch.Tensor, mode: str) -> torch.Tensor:
    """``cam`` (B, 1, h, w) resized to ``like``'s spatial size and repeated over its channels."""
    size = tuple(like.shape[2:])
    if tuple(cam.shape[2:]) != size:
        cam = F.interpolate(
            cam, size=size, mode=mode, **({} if mode == "nearest" else {"align_corners": False})
        )
    return cam.expand(-1, like.shape[1], *size).contiguous()


@register_method(
    "gradcam",
    params={
        "layer": _LAYER,
        "relu": ParamSpec("bool", True, "ReLU the map (false keeps the sign)"),
        "interpolation": ParamSpec("str", "bilinear", "upsampling mode", choices=_INTERP),
    },
    signed=False,
)
class GradCam(BackpropExplainer):
    """Grad-CAM at a layer (default: the last one larger than 1x1), upsampled to the input (channels
    repeated)."""

    def setup(self) -> None:
        self.choice = LayerChoice(self.model, self.params["layer"])

    def prepare(self, x: torch.Tensor) -> None:
        self.choice.resolve(x)

    def request(self) -> BackpropRequest:
        return BackpropRequest(layers={self.choice.name: self.choice.module})

    def finish(self, result: BackpropResult) -> Attribution:
        name = self.choice.name
        act, grad, grid = as_map(result.activations[name], result.layer_grads[name], result.x.shape)
        cam = layer_cam(act, grad, self.params["relu"])
        out = base_attribution(result, upsample(cam, result.x, self.params["interpolation"]))
        out.layer = name if grid is None else grid.describe(name)
        return out

    def unit_contributions(
        self, x: torch.Tensor, target: int, layer: str, attribution: Attribution, row: int
    ) -> np.ndarray | None:
        """Grad-CAM's channel contributions at ``layer`` (:func:`channel_contributions`)."""
        return channel_contributions(self.model, x, target, layer)


@register_method(
    "guided_gradcam",
    params={
        "layer": _LAYER,
        "interpolation": ParamSpec("str", "bilinear", "upsampling mode of the Grad-CAM map", choices=_INTERP),
    },
    signed=True,
)
class GuidedGradCam(BackpropExplainer):
    """Guided backprop times the ReLU'd, upsampled Grad-CAM map (Selvaraju et al. 2017)."""

    def setup(self) -> None:
        self.choice = LayerChoice(self.model, self.params["layer"])

    def prepare(self, x: torch.Tensor) -> None:
        self.choice.resolve(x)

    def request(self) -> BackpropRequest:
        return BackpropRequest(modes={ReluMode.GUIDED}, layers={self.choice.name: self.choice.module})

    def finish(self, result: BackpropResult) -> Attribution:
        name = self.choice.name
        act, grad, _ = as_map(result.activations[name], result.layer_grads[name], result.x.shape)
        cam = layer_cam(act, grad, True)
        heat = result.input_grads[ReluMode.GUIDED] * upsample(cam, result.x, self.params["interpolation"])
        out = base_attribution(result, heat)
        out.layer = name
        return out

    def unit_contributions(
        self, x: torch.Tensor, target: int, layer: str, attribution: Attribution, row: int
    ) -> np.ndarray | None:
        """Its Grad-CAM factor's channel contributions at ``layer`` (:func:`channel_contributions`)."""
        return channel_contributions(self.model, x, target, layer)
