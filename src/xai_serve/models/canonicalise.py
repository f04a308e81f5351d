"""Make a model explainable by hooks: every ReLU its own, non-in-place module.

Hook-based methods (guided backprop, LRP, Captum/zennit style) need each activation to be a module
called once per forward pass and never to overwrite its input (methods.md A.8). ``canonicalise``:

1. turns off ``inplace`` on every module that has the flag (ReLU, ReLU6, LeakyReLU, Dropout, ...);
2. swaps torchvision's ``BasicBlock`` / ``Bottleneck`` (which call one ``self.relu`` two or three times
   and use ``out += identity``) for subclasses with one ReLU module per use (``relu``, ``relu2``,
   ``relu3``) and the addition as a :class:`~xai_serve.models.layers.Sum` module named ``add``;
3. replaces a parameter-free module registered under several names by independent copies.

Parameters and buffers are untouched (same ``state_dict`` keys and values) and outputs stay
bit-identical. It works in place, returns the model and is idempotent.
"""

from __future__ import annotations

import copy

import torch
from torch import nn
from torchvision.models.resnet import BasicBlock, Bottleneck

from xai_serve.models.layers import Sum


class CanonicalBasicBlock(BasicBlock):
    """torchvision ``BasicBlock`` with distinct ReLUs (``relu``, ``relu2``) and a ``Sum`` module ``add``."""

    relu2: nn.Module
    add: nn.Module

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        identity = x
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        if self.downsample is not None:
            identity = self.downsample(x)
        return self.relu2(self.add(out, identity))


class CanonicalBottleneck(Bottleneck):
    """torchvision ``Bottleneck`` with distinct ReLUs (``relu``, ``relu2``, ``relu3``) and ``add``."""

    relu2: nn.Module
    relu3: nn.Module
    add: nn.Module

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        identity = x
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.relu2(self.bn2(self.conv2(out)))
        out = self.bn3(self.conv3(out))
        if self.downsample is not None:
            identity = self.downsample(x)
        return self.relu3(self.add(out, identity))


def _swap_block(module: nn.Module) -> None:
    if type(module) is BasicBlock:
        module.__class__ = CanonicalBasicBlock
        module.relu2 = nn.ReLU()
        module.add = Sum()
    elif type(module) is Bottleneck:
        module.__class__ = CanonicalBottleneck
        module.relu2 = nn.ReLU()
        module.relu3 = nn.ReLU()
        module.add = Sum()


def _split_shared_modules(model: nn.Module) -> None:
    seen: set[int] = set()
    for name, module in list(model.named_modules(remove_duplicate=False)):
        if not name:
            continue
        if id(module) in seen and not any(True for _ in module.parameters()) \
                and not any(True for _ in module.buffers()):
            parent_name, _, child = name.rpartition(".")
            parent = model.get_submodule(parent_name) if parent_name else model
            setattr(parent, child, copy.deepcopy(module))
        seen.add(id(module))


def canonicalise(model: nn.Module) -> nn.Module:
    """Rewrite ``model`` in place so every ReLU is a distinct, non-in-place module; returns ``model``."""
    for module in model.modules():
        if hasattr(module, "inplace") and isinstance(module.inplace, bool):
            module.inplace = False
    for module in list(model.modules()):
        _swap_block(module)
    _split_shared_modules(model)
    return model
