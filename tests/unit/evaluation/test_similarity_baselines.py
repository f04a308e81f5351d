"""Similarity measures against scipy / scikit-image, baselines against their definitions,
removal-step maps against direct constructions."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from scipy.stats import spearmanr

from xai_serve.errors import InvalidParameterError
from xai_serve.evaluation.baselines import gaussian_blur, make_baseline
from xai_serve.evaluation.ordering import pixel_steps, region_steps
from xai_serve.evaluation.similarity import compare_maps, normalise_maps, spearman, ssim


def test_spearman_matches_scipy_with_ties():
    rng = np.random.default_rng(0)
    a = rng.integers(0, 5, size=(4, 50)).astype(float)  # many ties
    b = a + rng.normal(size=(4, 50))
    ours = spearman(a, b)
    ref = [spearmanr(a[i], b[i]).statistic for i in range(4)]
    np.testing.assert_allclose(ours, ref, atol=1e-12)


def test_ssim_matches_scikit_image():
    from skimage import metrics  # a parity test fails, never skips, when scikit-image is missing

    rng = np.random.default_rng(1)
    a = rng.random((3, 28, 28))
    b = np.clip(a + 0.2 * rng.normal(size=a.shape), 0, 1)
    ours = ssim(a, b, data_range=1.0)
    ref = [
        metrics.structural_similarity(
            a[i], b[i], data_range=1.0, gaussian_weights=True, sigma=1.5, use_sample_covariance=False
        )
        for i in range(3)
    ]
    np.testing.assert_allclose(ours, ref, atol=1e-10)
    np.testing.assert_allclose(ssim(a, a), 1.0, atol=1e-12)


def test_zero_map_is_replaced_by_noise_and_identity_gives_one():
    rng = np.random.default_rng(0)
    maps = np.zeros((2, 1, 4, 4))
    maps[1, 0, 0, 0] = -3.0
    n = normalise_maps(maps, rng)
    assert np.abs(n[0]).max() == pytest.approx(1.0) and np.std(n[0]) > 0
    assert n[1, 0, 0, 0] == -1.0
    x = np.random.default_rng(2).normal(size=(3, 1, 8, 8))
    sims = compare_maps(x, x, rng)
    for v in sims.values():
        np.testing.assert_allclose(v, 1.0, atol=1e-12)


def test_baselines():
    g = torch.Generator().manual_seed(0)
    x = torch.randn(3, 2, 6, 6, generator=g)
    lo = x.reshape(3, -1).min(1).values
    hi = x.reshape(3, -1).max(1).values
    assert torch.equal(make_baseline("black", x)[:, 0, 0, 0], lo)
    assert torch.equal(make_baseline("zero", x), torch.zeros_like(x))
    assert torch.allclose(make_baseline("mean", x)[:, 1, 2, 3], x.reshape(3, -1).mean(1))
    u = make_baseline("uniform", x, generator=torch.Generator().manual_seed(1))
    assert ((u >= lo.view(-1, 1, 1, 1)) & (u <= hi.view(-1, 1, 1, 1))).all()
    assert torch.equal(u, make_baseline("uniform", x, generator=torch.Generator().manual_seed(1)))
    # blur: a constant image is unchanged, the kernel sums to one, an impulse spreads symmetrically
    c = torch.full((1, 1, 9, 9), 2.5)
    assert torch.allclose(gaussian_blur(c, 1.0), c)
    imp = torch.zeros(1, 1, 15, 15)
    imp[0, 0, 7, 7] = 1.0
    blurred = gaussian_blur(imp, 1.0)
    assert blurred.sum().item() == pytest.approx(1.0, abs=1e-6)
    assert torch.allclose(blurred, blurred.flip(-1)) and torch.allclose(blurred, blurred.transpose(-1, -2))
    with pytest.raises(InvalidParameterError):
        make_baseline("white", x)


def test_pixel_steps_and_region_steps():
    a = torch.tensor([[[[0.1, 0.9], [0.5, -0.2]]]])
    steps, k = pixel_steps(a, "morf")
    assert k == 4 and steps.flatten().tolist() == [3, 1, 2, 4]
    steps, k = pixel_steps(a, "lerf", features_in_step=3)
    assert k == 2 and steps.flatten().tolist() == [1, 2, 1, 1]
    # 5x5 map in 2x2 tiles: padded to 6x6 (top/left 0, bottom/right 1), 9 tiles
    m = torch.zeros(1, 1, 5, 5)
    m[0, 0, 4, 4] = 5.0  # the bottom-right tile (only one real pixel) first
    m[0, 0, 0, 0] = 3.0
    steps, k = region_steps(m, "morf", 2)
    assert k == 9 and steps.shape == (1, 1, 5, 5)
    assert steps[0, 0, 4, 4] == 1 and steps[0, 0, 0, 0] == 2 and steps[0, 0, 1, 1] == 2
    steps, k = region_steps(m, "morf", 2, max_regions=2)
    assert k == 2 and int(steps.max()) == 3 and int((steps <= 2).sum()) == 1 + 4
