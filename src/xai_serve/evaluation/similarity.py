"""Similarity of two batches of attribution maps (model-randomisation sanity checks).

- Spearman rank correlation of the flattened maps (average ranks for ties, as
  ``scipy.stats.spearmanr``), on the signed maps and on their absolute values,
- SSIM (Wang et al. 2004: Gaussian window sigma 1.5, truncated at 3.5 sigma, K1 = 0.01,
  K2 = 0.03, population covariances, borders cropped; the same as scikit-image's
  ``structural_similarity(gaussian_weights=True, use_sample_covariance=False)``) of the
  absolute maps scaled to [0, 1] by their maximum (data range 1), averaged over channels.

Before comparing, every map is divided by max|map| (General Pattern Theory); an all-zero map is replaced by
N(0, 0.01^2) noise drawn from ``rng`` so the correlation is defined (the General Pattern Theory code's guard).
"""

from __future__ import annotations

import numpy as np
from scipy.ndimage import gaussian_filter
from scipy.stats import rankdata


def normalise_maps(maps: np.ndarray, rng: np.random.Generator, noise_std: float = 0.01) -> np.ndarray:
    """(B, ...) float64 maps divided by their max |value|; all-zero maps replaced by noise."""
    m = np.asarray(maps, dtype=np.float64).reshape(len(maps), -1).copy()
    peak = np.abs(m).max(axis=1)
    for i in np.flatnonzero(peak == 0):
        m[i] = rng.normal(0.0, noise_std, size=m.shape[1])
        peak[i] = np.abs(m[i]).max()
    return (m / peak[:, None]).reshape(np.shape(maps))


def spearman(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Per-row Spearman rank correlation of two (B, ...) arrays, (B,); NaN for a constant row."""
    ra = rankdata(np.reshape(a, (len(a), -1)), axis=1)
    rb = rankdata(np.reshape(b, (len(b), -1)), axis=1)
    ra -= ra.mean(axis=1, keepdims=True)
    rb -= rb.mean(axis=1, keepdims=True)
    den = np.sqrt((ra**2).sum(axis=1) * (rb**2).sum(axis=1))
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.asarray((ra * rb).sum(axis=1) / den)


def _ssim_2d(x: np.ndarray, y: np.ndarray, data_range: float) -> float:
    sigma, truncate = 1.5, 3.5
    win = 2 * int(truncate * sigma + 0.5) + 1
    f = {"sigma": sigma, "truncate": truncate, "mode": "reflect"}
    ux, uy = gaussian_filter(x, **f), gaussian_filter(y, **f)
    uxx, uyy, uxy = gaussian_filter(x * x, **f), gaussian_filter(y * y, **f), gaussian_filter(x * y, **f)
    vx, vy, vxy = uxx - ux * ux, uyy - uy * uy, uxy - ux * uy
    c1, c2 = (0.01 * data_range) ** 2, (0.03 * data_range) ** 2
    s = ((2 * ux * uy + c1) * (2 * vxy + c2)) / ((ux**2 + uy**2 + c1) * (vx + vy + c2))
    pad = (win - 1) // 2
    return float(s[pad:-pad, pad:-pad].mean()) if min(s.shape) > 2 * pad else float(s.mean())


def ssim(a: np.ndarray, b: np.ndarray, data_range: float = 1.0) -> np.ndarray:
    """Per-sample SSIM of two (B, H, W) or (B, C, H, W) batches, averaged over channels, (B,)."""
    a = np.asarray(a, dtype=np.float64)
    b = np.asarray(b, dtype=np.float64)
    if a.ndim == 3:
        a, b = a[:, None], b[:, None]
    return np.array(
        [np.mean([_ssim_2d(a[i, c], b[i, c], data_range) for c in range(a.shape[1])]) for i in range(len(a))]
    )


def abs_unit(maps: np.ndarray) -> np.ndarray:
    """|maps| scaled to [0, 1] per sample (by the maximum absolute value)."""
    m = np.abs(np.asarray(maps, dtype=np.float64))
    peak = m.reshape(len(m), -1).max(axis=1)
    peak = np.where(peak > 0, peak, 1.0)
    return m / peak.reshape((-1,) + (1,) * (m.ndim - 1))


def compare_maps(original: np.ndarray, other: np.ndarray, rng: np.random.Generator) -> dict[str, np.ndarray]:
    """Per-sample ``spearman``, ``spearman_abs`` and ``ssim`` between two batches of maps."""
    a = normalise_maps(original, rng)
    b = normalise_maps(other, rng)
    return {
        "spearman": spearman(a, b),
        "spearman_abs": spearman(np.abs(a), np.abs(b)),
        "ssim": ssim(abs_unit(a), abs_unit(b)),
    }
