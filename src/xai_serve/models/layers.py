"""Small modules that make operations visible to hooks (explanation rules attach to modules), and
:func:`layer_output`: one layer's output from a forward pass that stops there."""

from __future__ import annotations

from typing import Any

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


class MaskedLinear(nn.Linear):
    """``nn.Linear`` computing ``x @ (W * mask).T + b``; masked weight entries are held at zero.

    ``mask`` is a non-persistent buffer (it comes from the filter sets, not the checkpoint), so the
    state_dict has exactly the keys of the replaced ``nn.Linear``.
    """

    mask: torch.Tensor

    def __init__(self, linear: nn.Linear, mask: torch.Tensor) -> None:
        super().__init__(
            linear.in_features,
            linear.out_features,
            bias=linear.bias is not None,
            device=linear.weight.device,
            dtype=linear.weight.dtype,
        )
        if tuple(mask.shape) != tuple(linear.weight.shape):
            raise ValueError(
                f"mask shape {tuple(mask.shape)} differs from the weight {tuple(linear.weight.shape)}"
            )
        self.register_buffer("mask", mask.to(linear.weight), persistent=False)
        with torch.no_grad():
            self.weight.copy_(linear.weight)
            if linear.bias is not None and self.bias is not None:
                self.bias.copy_(linear.bias)
        self.apply_mask()
        self.register_load_state_dict_post_hook(lambda module, _keys: module.apply_mask())

    def apply_mask(self) -> None:
        with torch.no_grad():
            self.weight.mul_(self.mask.to(self.weight))

    def filters(self, cls: int) -> list[int]:
        """The filters class ``cls`` uses (ascending)."""
        return [int(f) for f in torch.nonzero(self.mask[cls]).flatten().tolist()]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.linear(x, self.weight * self.mask, self.bias)

    def extra_repr(self) -> str:
        return super().extra_repr() + f", kept={int(self.mask.sum())}"


class _Stop(Exception):
    """Raised by :func:`layer_output`'s hook to end the forward pass at the layer."""


def layer_output(model: nn.Module, layer: nn.Module, *inputs: Any) -> Any:
    """The output of ``layer``'s first call in ``model(*inputs)``, the forward pass stopping there (the
    layers after it do not run); None when the pass never calls ``layer``. Runs in the caller's
    autograd mode and context (a watch, ``torch.no_grad``...); the hook is removed also on error."""
    captured: list[Any] = []

    def hook(module: nn.Module, args: Any, output: Any) -> None:
        captured.append(output)
        raise _Stop

    handle = layer.register_forward_hook(hook)
    try:
        model(*inputs)
    except _Stop:
        pass
    finally:
        handle.remove()
    return captured[0] if captured else None
