"""Model zoo: registry (``create_model``, ``list_models``, ``register_model``), canonicalisation,
``ModelCard`` and ``load_checkpoint``.

Registered names: ``mlp``, ``simplenet_310k``, ``simplenet_5m``, ``resnet20``, ``resnet18``,
``resnet34``, ``resnet50``, ``vit`` (torchvision's ViT, any channel count),
``resgptnet34`` / ``resgptnet_small`` (General Pattern Theory, outputs y, yg, ys);
the family ``torchvision.NAME`` (every torchvision classifier, not listed). A card may instead name a
user's model file (``build_from_card``). Every ReLU model has distinct, non-in-place ReLU modules.
"""

from xai_serve.models import (  # noqa: F401  (registration)
    decomposed,
    mlp,
    resgptnet,
    resnet_cifar,
    resnet_torchvision,
    simplenet,
    torchvision_zoo,
    vit,
)
from xai_serve.models.canonicalise import canonicalise
from xai_serve.models.card import ModelCard
from xai_serve.models.checkpoint import load_checkpoint
from xai_serve.models.layers import PadShortcut, Sum
from xai_serve.models.registry import create_model, list_models, model_parameters, register_model
from xai_serve.models.user_model import build_from_card
from xai_serve.models.weights import load_state_dict_file, strip_prefix

__all__ = [
    "CanonicalBasicBlock",
    "CanonicalBottleneck",
    "ModelCard",
    "PadShortcut",
    "Sum",
    "build_from_card",
    "canonicalise",
    "create_model",
    "list_models",
    "load_checkpoint",
    "load_state_dict_file",
    "model_parameters",
    "register_model",
    "strip_prefix",
]


def __getattr__(name: str) -> object:
    # the canonical torchvision blocks import torchvision: only on use (a worker's cold start)
    if name in ("CanonicalBasicBlock", "CanonicalBottleneck"):
        from xai_serve.models import canonical_blocks

        return getattr(canonical_blocks, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
