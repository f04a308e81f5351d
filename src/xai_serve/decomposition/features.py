"""Reading the final conv stage of a model: the spatial maps ``A`` (B, D, h, w) that are globally pooled
and the pooled vector ``h`` (B, D) that enters the final linear layer (docs/methods.md#decomp-model).

Hooks are removed after every call, also when it fails.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from xai_serve.models.decomposed import Head, find_head


@dataclass
class Captured:
    maps: torch.Tensor  # (B, D, h, w): the pooling layer's input
    pooled: torch.Tensor  # (B, D): the final linear layer's input
    logits: torch.Tensor  # (B, K)


def capture(model: nn.Module, x: torch.Tensor, head: Head | None = None) -> Captured:
    """One forward pass of ``model`` on ``x`` (no gradients), returning the head's inputs and the logits."""
    head = head or find_head(model)
    seen: dict[str, torch.Tensor] = {}

    def on_pool(_m: nn.Module, args: tuple[Any, ...]) -> None:
        seen["maps"] = args[0].detach()

    def on_linear(_m: nn.Module, args: tuple[Any, ...]) -> None:
        seen["pooled"] = args[0].detach()

    handles = [head.pool.register_forward_pre_hook(on_pool), head.linear.register_forward_pre_hook(on_linear)]
    try:
        with torch.no_grad():
            logits = model(x).detach()
    finally:
        for handle in handles:
            handle.remove()
    if "maps" not in seen or "pooled" not in seen:
        raise RuntimeError(f"the forward pass did not reach {head.pool_name} and {head.linear_name}")
    return Captured(seen["maps"], seen["pooled"].flatten(1), logits)


def pooled_features(
    model: nn.Module,
    batches: Iterable[tuple[torch.Tensor, torch.Tensor]],
    *,
    device: str | torch.device = "cpu",
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """``(H, y, logits)``: pooled features (N, D), labels (N,) and logits (N, K) over ``batches``."""
    head = find_head(model)
    feats, labels, logits = [], [], []
    for x, y in batches:
        c = capture(model, x.to(device), head)
        feats.append(c.pooled.cpu())
        logits.append(c.logits.cpu())
        labels.append(torch.as_tensor(y).cpu())
    if not feats:
        raise ValueError("no images: the dataset split is empty")
    return torch.cat(feats), torch.cat(labels).long(), torch.cat(logits)
