"""Small modules that make operations visible to hooks (explanation rules attach to modules)."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


class Sum(nn.Module):
    """``a + b`` as a module: the residual addition of ResNet blocks, so LRP can give it a rule."""

    def forward(self, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        return a + b


class PadShortcut(nn.Module):
    """Option-A ResNet shortcut (He et al. 2016, CIFAR): subsample by 2 and zero-pad the channels.

    ``F.pad(x[:, :, ::2, ::2], (0, 0, 0, 0, pad, pad))`` with ``pad = planes // 4``; no parameters.
    """

    def __init__(self, pad: int) -> None:
        super().__init__()
        self.pad = pad

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.pad(x[:, :, ::2, ::2], (0, 0, 0, 0, self.pad, self.pad))

    def extra_repr(self) -> str:
        return f"pad={self.pad}"
