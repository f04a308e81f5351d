"""Summary scores of perturbation curves (docs/methods.md#faithfulness).

``curve`` is (B, K + 1) with ``curve[:, 0]`` the unperturbed score; NaN marks steps past an
image's own end (region perturbation can pick fewer regions on some images).

- AOPC (Samek et al. 2017): ``1/(K+1) * sum_{k=0..K} (f(x^0) - f(x^k))``; for MoRF higher is better.
- AUC: trapezoid rule with dx = 1 over steps 1..K, as Quantus' ``calculate_auc`` on its
  ``PixelFlipping`` curve (which starts at the first perturbed input); MoRF lower is better,
  LeRF higher is better.
- ABPC: ``AUC(LeRF) - AUC(MoRF)`` (higher is better).
"""

from __future__ import annotations

import torch


def _valid(curve: torch.Tensor) -> torch.Tensor:
    return ~torch.isnan(curve)


def aopc(curve: torch.Tensor) -> torch.Tensor:
    """Area over the perturbation curve per row (B,)."""
    valid = _valid(curve)
    drop = torch.where(valid, curve[:, :1] - curve, torch.zeros_like(curve))
    return drop.sum(dim=1) / valid.sum(dim=1)


def auc(curve: torch.Tensor) -> torch.Tensor:
    """Trapezoid area (dx = 1) under steps 1..K of each row (B,); 0 for a single step."""
    c = curve[:, 1:]
    valid = _valid(c)
    pair = valid[:, 1:] & valid[:, :-1]
    mids = torch.where(pair, (c[:, 1:] + c[:, :-1]) / 2, torch.zeros_like(c[:, 1:]))
    return mids.sum(dim=1)


def abpc(curve_lerf: torch.Tensor, curve_morf: torch.Tensor) -> torch.Tensor:
    """Area between the LeRF and MoRF perturbation curves per row (B,)."""
    return auc(curve_lerf) - auc(curve_morf)
