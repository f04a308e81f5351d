"""torchvision ResNet-18/34/50 (random init or a local state_dict), canonicalised at construction.

torchvision is imported when one of these is built, not when the registry loads (it imports
``torch._dynamo``: seconds of every worker's cold start, even for a model without a ResNet)."""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

from torch import nn

from xai_serve.models.canonicalise import canonicalise
from xai_serve.models.registry import register_model
from xai_serve.models.weights import load_state_dict_file

if TYPE_CHECKING:
    from torchvision.models import ResNet


def _build(name: str, num_classes: int, in_chans: int, weights: str | None) -> ResNet:
    builder = getattr(importlib.import_module("torchvision.models"), name)
    model: ResNet = builder(weights=None, num_classes=num_classes)
    if in_chans != 3:
        model.conv1 = nn.Conv2d(in_chans, 64, kernel_size=7, stride=2, padding=3, bias=False)
    if weights is not None:
        model.load_state_dict(load_state_dict_file(weights))
    canonicalise(model)
    return model


@register_model("resnet18")
def resnet18(num_classes: int = 1000, in_chans: int = 3, weights: str | None = None) -> nn.Module:
    """torchvision ResNet-18; ``weights`` is a local state_dict path (nothing is downloaded)."""
    return _build("resnet18", num_classes, in_chans, weights)


@register_model("resnet34")
def resnet34(num_classes: int = 1000, in_chans: int = 3, weights: str | None = None) -> nn.Module:
    """torchvision ResNet-34; ``weights`` is a local state_dict path (nothing is downloaded)."""
    return _build("resnet34", num_classes, in_chans, weights)


@register_model("resnet50")
def resnet50(num_classes: int = 1000, in_chans: int = 3, weights: str | None = None) -> nn.Module:
    """torchvision ResNet-50; ``weights`` is a local state_dict path (nothing is downloaded)."""
    return _build("resnet50", num_classes, in_chans, weights)
