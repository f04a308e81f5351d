"""Every torchvision classification architecture as the model family ``torchvision.NAME``.

``create_model("torchvision.vgg16", num_classes=10)`` builds ``torchvision.models.vgg16(weights=None,
num_classes=10)``: random initialisation, nothing downloaded. The names are torchvision's own list of
classification builders (``torchvision.models.list_models(module=torchvision.models)``: AlexNet, VGG,
ResNet / ResNeXt / Wide ResNet, DenseNet, GoogLeNet, Inception v3, MobileNet v2/v3, MNASNet,
ShuffleNet v2, SqueezeNet, EfficientNet v1/v2, RegNet, ConvNeXt, Swin, MaxViT, ViT). The models are
canonicalised (distinct non-in-place ReLU modules, :mod:`xai_serve.models.canonicalise`).

torchvision is imported when a model of the family is resolved, never when the registry loads (a
worker serving another model does not pay its import).
"""

from __future__ import annotations

import functools
import importlib
from typing import Any

from torch import nn

from xai_serve.errors import InvalidParameterError
from xai_serve.models.canonicalise import canonicalise
from xai_serve.models.registry import ModelFactory, register_model_family

PREFIX = "torchvision."

#: input side of the architectures that are not 224 x 224 (torchvision's documented eval transforms)
INPUT_SIDE = {"inception_v3": 299}


def torchvision_classifiers() -> list[str]:
    """torchvision's classification architecture names, sorted (imports torchvision)."""
    models = importlib.import_module("torchvision.models")
    return sorted(models.list_models(module=models))


def input_side(name: str) -> int:
    """The square input side an architecture is evaluated at (224 unless listed in ``INPUT_SIDE``)."""
    return INPUT_SIDE.get(name, 224)


def _factory(name: str) -> ModelFactory:
    def build(num_classes: int = 1000, **kwargs: Any) -> nn.Module:
        builder = importlib.import_module("torchvision.models").get_model_builder(name)
        if "weights" in kwargs or "pretrained" in kwargs:
            raise InvalidParameterError("torchvision models are built without downloaded weights")
        if name in ("googlenet", "inception_v3"):
            kwargs.setdefault("init_weights", False)  # random init either way; skips a slow scipy init
        model: nn.Module = builder(weights=None, num_classes=num_classes, **kwargs)
        return canonicalise(model)

    build.__doc__ = f"torchvision {name} (weights=None, random initialisation)"
    return build


@functools.cache
def _resolve(name: str) -> ModelFactory | None:
    if name not in torchvision_classifiers():
        return None
    return _factory(name)


register_model_family(PREFIX, _resolve)
