"""Cheap versions of the archive's credential checks, for one served explanation at a time (live
credentials; the sampling and the background worker are :mod:`xai_serve.serving.live_monitor`).

- :func:`short_deletion`: a short pixel-flipping curve (``steps`` = 10 by default) in both orders, MoRF
  and LeRF, of the explained class's softmax score with the ``black`` baseline, as the credentials'
  faithfulness record (``xai certify``) but with 10 steps instead of 64. Both orders of every image
  are evaluated by :func:`~xai_serve.evaluation.perturbation.perturbation_curves` in one batch
  (2 x (steps + 1) inputs per image: one forward pass for a small model). AOPC (Samek et al. 2017)
  and ABPC (AUC LeRF - AUC MoRF) come from :mod:`~xai_serve.evaluation.scores`.
- :func:`perturb` and :func:`rank_stability`: the map's Spearman rank correlation with the map of a
  slightly perturbed input (Gaussian noise of 2 % of the input's own standard deviation), the
  stability ("max-sensitivity" family; Yeh et al., NeurIPS 2019) of the explanation, one extra pass.
- :class:`DriftReference` and :func:`drift_score`: per-channel statistics of the served images (pixel
  space, 0..1) against the training split's, as the standardised mean shift plus the log ratio of the
  standard deviations, the largest over channels. On the built-in digits a window of 8 or more test
  images scores about 0.02, a single image at most 0.4; inverted digits score 1.2, uniform noise 0.7
  (the shipped alert's threshold is 0.5, over the monitor's window of 64 samples).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from xai_serve.evaluation.baselines import make_baseline
from xai_serve.evaluation.ordering import pixel_steps
from xai_serve.evaluation.perturbation import Model, perturbation_curves
from xai_serve.evaluation.scores import abpc, aopc

SHORT_STEPS = 10
BASELINE = "black"  # the credentials' baseline (xai certify)
OUTPUT = "softmax"
STABILITY_NOISE = 0.02  # noise std, as a fraction of the input's own standard deviation


@dataclass(frozen=True)
class ShortCurve:
    """Per image (B,): the two curves (B, steps + 1) and their scores."""

    morf: torch.Tensor
    lerf: torch.Tensor
    aopc_morf: torch.Tensor
    aopc_lerf: torch.Tensor
    abpc: torch.Tensor


def pixel_map(heatmap: torch.Tensor, size: Sequence[int]) -> torch.Tensor:
    """A (B, C, h, w) map as whole-pixel relevance (B, 1, H, W): channels summed, a coarser map (a
    layer's Grad-CAM) resized bilinearly to the input's ``size`` (H, W)."""
    a = heatmap.detach().float()
    if a.dim() == 3:
        a = a.unsqueeze(1)
    if a.shape[1] != 1:
        a = a.sum(dim=1, keepdim=True)
    if tuple(a.shape[-2:]) != tuple(size):
        a = F.interpolate(a, size=tuple(size), mode="bilinear", align_corners=False)
    return a


def short_deletion(
    model: Model, x: torch.Tensor, target: torch.Tensor, heatmap: torch.Tensor, *, steps: int = SHORT_STEPS
) -> ShortCurve:
    """The short MoRF and LeRF deletion curves of ``heatmap`` (B, C', h, w) on ``x`` (B, C, H, W) for
    class ``target`` (B,), and their AOPC and ABPC (see the module doc)."""
    b = x.shape[0]
    a = pixel_map(heatmap, x.shape[-2:])
    per_step = max(1, math.ceil(a[0].numel() / steps))
    morf, k = pixel_steps(a, "morf", per_step)
    lerf, _ = pixel_steps(a, "lerf", per_step)
    base = make_baseline(BASELINE, x)
    curves = perturbation_curves(
        model,
        torch.cat([x, x]),
        torch.cat([target, target]),
        torch.cat([morf, lerf]).to(x.device),
        torch.cat([base, base]),
        k,
        output=OUTPUT,
        batch_size=2 * b * (k + 1),
    )
    c_morf, c_lerf = curves[:b], curves[b:]
    return ShortCurve(c_morf, c_lerf, aopc(c_morf), aopc(c_lerf), abpc(c_lerf, c_morf))


def perturb(x: torch.Tensor, generator: torch.Generator, noise: float = STABILITY_NOISE) -> torch.Tensor:
    """``x`` plus Gaussian noise of ``noise`` times each input's standard deviation (seeded)."""
    spread = x.reshape(x.shape[0], -1).std(dim=1).view(-1, *([1] * (x.dim() - 1)))
    eps = torch.randn(x.shape, generator=generator, dtype=torch.float32).to(x.device, x.dtype)
    return x + noise * spread * eps


def rank_stability(heatmap: torch.Tensor, heatmap_perturbed: torch.Tensor) -> np.ndarray:
    """Per image (B,): Spearman rank correlation of the two maps as whole-pixel relevance (NaN for a
    constant map)."""
    from xai_serve.evaluation.similarity import spearman  # scipy: imported when a sample is checked

    size = heatmap.shape[-2:]
    a = pixel_map(heatmap, size).reshape(heatmap.shape[0], -1).double().cpu().numpy()
    b = pixel_map(heatmap_perturbed, size).reshape(heatmap.shape[0], -1).double().cpu().numpy()
    return spearman(a, b)


@dataclass(frozen=True)
class DriftReference:
    """Per-channel mean and standard deviation of the training images (pixel space, 0..1)."""

    mean: tuple[float, ...]
    std: tuple[float, ...]

    def to_dict(self) -> dict[str, list[float]]:
        return {"mean": list(self.mean), "std": list(self.std)}


def channel_moments(pixels: torch.Tensor) -> tuple[np.ndarray, np.ndarray]:
    """Per-channel mean and mean of squares (C,) of one image [C, H, W]."""
    p = pixels.detach().double().reshape(pixels.shape[0], -1)
    return p.mean(dim=1).cpu().numpy(), (p * p).mean(dim=1).cpu().numpy()


def drift_score(means: np.ndarray, squares: np.ndarray, reference: DriftReference) -> float:
    """The drift of a window of images (``means``, ``squares``: (N, C) per-image moments) from
    ``reference``: max over channels of ``|m - mu| / sigma + |ln(s / sigma)|``, with ``m`` and ``s`` the
    pooled mean and standard deviation of the window's pixels (see the module doc)."""
    m = np.asarray(means, dtype=np.float64).mean(axis=0)
    var = np.maximum(np.asarray(squares, dtype=np.float64).mean(axis=0) - m * m, 0.0)
    mu = np.asarray(reference.mean, dtype=np.float64)
    sigma = np.maximum(np.asarray(reference.std, dtype=np.float64), 1e-6)
    s = np.maximum(np.sqrt(var), 1e-6)
    return float(np.max(np.abs(m - mu) / sigma + np.abs(np.log(s / sigma))))
