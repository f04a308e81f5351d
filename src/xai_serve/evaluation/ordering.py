"""Removal orders for perturbation tests, expressed as *removal-step maps*.

A removal-step map has one integer per feature: the step (1-based) at which that feature is
replaced by the baseline; features never removed carry ``n_steps + 1``. The perturbed input of
step k is then ``where(step_map <= k, baseline, x)``, which lets every step of every image be
built independently and evaluated in large batches (see ``perturbation.py``).

- pixel flipping: features ranked by attribution, ``features_in_step`` features per step
  (same order as Quantus ``PixelFlipping``: descending attribution for MoRF),
- region perturbation: the image tiled into ``patch_size`` squares, tiles ranked by their
  attribution sum, one tile per step (same procedure as Quantus 0.6 ``RegionPerturbation``).

Orders: ``morf`` (most relevant first), ``lerf`` (least relevant first), ``random`` (seeded).
Ties are broken by feature index (stable sort).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from xai_serve.errors import InvalidParameterError

ORDERS = ("morf", "lerf", "random")


def _check_order(order: str) -> None:
    if order not in ORDERS:
        raise InvalidParameterError(f"order must be one of {', '.join(ORDERS)}; got {order!r}")


def ranking(scores: torch.Tensor, order: str, generator: torch.Generator | None = None) -> torch.Tensor:
    """Feature indices of each row of ``scores`` (B, N), first-removed first."""
    _check_order(order)
    if order == "random":
        return torch.stack(
            [torch.randperm(scores.shape[1], generator=generator) for _ in range(scores.shape[0])]
        ).to(scores.device)
    return torch.argsort(scores, dim=1, descending=(order == "morf"), stable=True)


def pixel_steps(
    attribution: torch.Tensor,
    order: str,
    features_in_step: int = 1,
    generator: torch.Generator | None = None,
) -> tuple[torch.Tensor, int]:
    """Removal-step map (shaped like ``attribution``) and the number of steps for pixel flipping.

    Every element of ``attribution`` (B, ...) is one feature; step k removes the features ranked
    ``(k-1)*features_in_step .. k*features_in_step - 1``.
    """
    if features_in_step < 1:
        raise InvalidParameterError(f"features_in_step must be >= 1, got {features_in_step}")
    b = attribution.shape[0]
    flat = attribution.reshape(b, -1)
    n = flat.shape[1]
    idx = ranking(flat, order, generator)
    rank = torch.empty_like(idx)
    rank.scatter_(1, idx, torch.arange(n, device=idx.device).expand(b, n))
    steps = rank // features_in_step + 1
    return steps.reshape(attribution.shape), math.ceil(n / features_in_step)


def grid_padding(size: int, patch_size: int) -> tuple[int, int]:
    """Padding (before, after) that makes ``size`` a multiple of ``patch_size`` (split floor/ceil)."""
    total = (-size) % patch_size
    return total // 2, total - total // 2


def region_steps(
    attribution: torch.Tensor,
    order: str,
    patch_size: int,
    max_regions: int | None = None,
    generator: torch.Generator | None = None,
) -> tuple[torch.Tensor, int]:
    """Removal-step map (B, 1, H, W) for region perturbation and the number of steps.

    The image is tiled into ``patch_size`` squares (a grid padded symmetrically so the tiles
    cover it, as Quantus does); tiles are ranked by their attribution sum (over channels too)
    and removed one per step, at most ``max_regions`` of them.
    """
    if patch_size < 1:
        raise InvalidParameterError(f"patch_size must be >= 1, got {patch_size}")
    a = attribution if attribution.dim() == 4 else attribution.unsqueeze(1)
    b, _, h, w = a.shape
    (pt, pb), (pl, pr) = grid_padding(h, patch_size), grid_padding(w, patch_size)
    a = F.pad(a.detach().to(torch.float64).sum(dim=1), (pl, pr, pt, pb))
    gh, gw = a.shape[1] // patch_size, a.shape[2] // patch_size
    sums = a.reshape(b, gh, patch_size, gw, patch_size).sum(dim=(2, 4)).reshape(b, gh * gw)
    n_tiles = gh * gw
    k = n_tiles if max_regions is None else min(max_regions, n_tiles)
    idx = ranking(sums, order, generator)
    rank = torch.empty_like(idx)
    rank.scatter_(1, idx, torch.arange(n_tiles, device=idx.device).expand(b, n_tiles))
    tile_step = torch.where(rank < k, rank + 1, torch.full_like(rank, k + 1))
    grid = tile_step.reshape(b, gh, 1, gw, 1).expand(b, gh, patch_size, gw, patch_size)
    steps = grid.reshape(b, gh * patch_size, gw * patch_size)[:, pt : pt + h, pl : pl + w]
    return steps.unsqueeze(1).contiguous(), k
