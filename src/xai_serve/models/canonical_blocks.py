"""torchvision's ``BasicBlock`` / ``Bottleneck`` with one ReLU module per use and the residual addition
as a :class:`~xai_serve.models.layers.Sum` module (what :func:`~xai_serve.models.canonicalise` swaps in).

Kept apart from :mod:`xai_serve.models.canonicalise` because it imports torchvision (and through it
``torch._dynamo``, seconds of a worker's cold start): canonicalisation imports it only when a model holds
torchvision blocks, i.e. when torchvision is already imported.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from torch import nn
from torchvision.models.resnet import BasicBlock, Bottleneck


def block_forward(block: Any, x: torch.Tensor, relus: Sequence[nn.Module], add: nn.Module) -> torch.Tensor:
    """The forward pass of a torchvision ``BasicBlock`` (2 ReLU uses) or ``Bottleneck`` (3), with the
    ReLU module of each use and the residual addition as the module ``add`` (the one copy of these
    forwards, shared by both canonical blocks)."""
    identity = x
    out = relus[0](block.bn1(block.conv1(x)))
    out = block.bn2(block.conv2(out))
    if len(relus) == 3:
        out = block.bn3(block.conv3(relus[1](out)))
    if block.downsample is not None:
        identity = block.downsample(x)
    return relus[-1](add(out, identity))


class CanonicalBasicBlock(BasicBlock):
    """torchvision ``BasicBlock`` with distinct ReLUs (``relu``, ``relu2``) and a ``Sum`` module ``add``."""

    relu2: nn.Module
    add: nn.Module

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return block_forward(self, x, (self.relu, self.relu2), self.add)


class CanonicalBottleneck(Bottleneck):
    """torchvision ``Bottleneck`` with distinct ReLUs (``relu``, ``relu2``, ``relu3``) and ``add``."""

    relu2: nn.Module
    relu3: nn.Module
    add: nn.Module

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return block_forward(self, x, (self.relu, self.relu2, self.relu3), self.add)
