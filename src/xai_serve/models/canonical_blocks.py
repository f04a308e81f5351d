"""torchvision's ``BasicBlock`` / ``Bottleneck`` with one ReLU module per use and the residual addition
as a :class:`~xai_serve.models.layers.Sum` module (what :func:`~xai_serve.models.canonicalise` swaps in).

Kept apart from :mod:`xai_serve.models.canonicalise` because it imports torchvision (and through it
``torch._dynamo``, seconds of a worker's cold start): canonicalisation imports it only when a model holds
torchvision blocks, i.e. when torchvision is already imported.
"""

from __future__ import annotations

import torch
from torch import nn
from torchvision.models.resnet import BasicBlock, Bottleneck

from xai_serve.models.canonicalise import block_forward


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
