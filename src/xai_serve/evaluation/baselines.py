"""Replacement values ("baselines") for removed pixels in perturbation tests.

A baseline is computed once per image, shaped like the image, from the *original* image, so a
pixel removed at step k keeps the same value at every later step (cumulative perturbation).

- ``black``: the image minimum (Quantus' default ``perturb_baseline="black"``; after input
  normalisation this is the normalised background, not 0),
- ``zero``: 0 in the model's input space,
- ``mean``: the image mean,
- ``uniform``: noise drawn uniformly in [image min, image max] (Samek et al. 2017), seeded,
- ``blur``: the image blurred with a Gaussian of ``blur_sigma`` pixels (per channel).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from xai_serve.errors import InvalidParameterError

BASELINES = ("black", "zero", "mean", "uniform", "blur")


def _gaussian_kernel(sigma: float, dtype: torch.dtype) -> torch.Tensor:
    radius = max(1, math.ceil(3 * sigma))
    t = torch.arange(-radius, radius + 1, dtype=torch.float64)
    k = torch.exp(-(t**2) / (2 * sigma**2))
    return (k / k.sum()).to(dtype)


def gaussian_blur(x: torch.Tensor, sigma: float) -> torch.Tensor:
    """Separable Gaussian blur of a (B, C, H, W) batch, reflect-padded, channels independent."""
    if sigma <= 0:
        raise InvalidParameterError(f"blur_sigma must be > 0, got {sigma}")
    b, c, h, w = x.shape
    k = _gaussian_kernel(sigma, x.dtype).to(x.device)
    r = (k.numel() - 1) // 2
    y = x.reshape(b * c, 1, h, w)
    mode = "reflect" if r < min(h, w) else "replicate"
    y = F.conv2d(F.pad(y, (r, r, 0, 0), mode=mode), k.view(1, 1, 1, -1))
    y = F.conv2d(F.pad(y, (0, 0, r, r), mode=mode), k.view(1, 1, -1, 1))
    return y.reshape(b, c, h, w)


def make_baseline(
    name: str,
    x: torch.Tensor,
    *,
    generator: torch.Generator | None = None,
    blur_sigma: float = 2.0,
) -> torch.Tensor:
    """Baseline images for the batch ``x`` (B, C, H, W); same shape and dtype as ``x``."""
    if x.dim() != 4:
        raise InvalidParameterError(f"expected a (B, C, H, W) batch, got shape {tuple(x.shape)}")
    flat = x.reshape(x.shape[0], -1)
    lo = flat.min(dim=1).values.view(-1, 1, 1, 1)
    if name == "black":
        return lo.expand_as(x).clone()
    if name == "zero":
        return torch.zeros_like(x)
    if name == "mean":
        return flat.mean(dim=1).view(-1, 1, 1, 1).expand_as(x).clone()
    if name == "uniform":
        hi = flat.max(dim=1).values.view(-1, 1, 1, 1)
        u = torch.rand(x.shape, generator=generator, dtype=torch.float64).to(x.device, x.dtype)
        return lo + (hi - lo) * u
    if name == "blur":
        return gaussian_blur(x, blur_sigma)
    raise InvalidParameterError(f"baseline must be one of {', '.join(BASELINES)}; got {name!r}")
