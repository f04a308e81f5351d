"""Pixel-flipping and region-perturbation curves equal Quantus 0.6 on the same model, inputs,
attributions and baseline (Quantus is a test-only dependency).

Attributions are continuous random values, so orderings (and tile sums) are tie-free and the
removal orders coincide exactly; the remaining difference is float32 forward passes evaluated in
differently composed batches, so the tolerance is 1e-6 absolute (probabilities and logits of O(1)).
"""

from __future__ import annotations

import numpy as np
import pytest
import quantus
import torch

from xai_serve.evaluation.baselines import make_baseline
from xai_serve.evaluation.perturbation import pixel_flipping, region_perturbation
from xai_serve.evaluation.scores import auc

TOL = 1e-6


def _np(t: torch.Tensor) -> np.ndarray:
    return t.detach().numpy().astype(np.float32)


@pytest.mark.parametrize("features_in_step", [1, 8])
@pytest.mark.parametrize("softmax", [True, False])
def test_pixel_flipping_equals_quantus(cnn, batch, features_in_step, softmax):
    x, y, a = batch
    ours = pixel_flipping(
        cnn,
        x,
        y,
        a,
        make_baseline("black", x),
        order="morf",
        features_in_step=features_in_step,
        output="softmax" if softmax else "logit",
        batch_size=97,
    )
    metric = quantus.PixelFlipping(
        features_in_step=features_in_step, perturb_baseline="black", disable_warnings=True
    )
    theirs = np.array(
        metric(
            model=cnn,
            x_batch=_np(x),
            y_batch=y.numpy(),
            a_batch=_np(a),
            device="cpu",
            softmax=softmax,
            batch_size=6,
        )
    )
    assert ours.shape == (6, 144 // features_in_step + 1)
    np.testing.assert_allclose(ours[:, 1:].numpy(), theirs, rtol=0, atol=TOL)
    # Quantus' calculate_auc is np.trapz(curve, dx=1), which numpy 2.4 removed: apply its
    # successor np.trapezoid to Quantus' own curve.
    np.testing.assert_allclose(auc(ours).numpy(), np.trapezoid(theirs, dx=1, axis=1), rtol=0, atol=1e-4)


@pytest.mark.parametrize("order", ["morf", "lerf"])
@pytest.mark.parametrize("patch_size", [3, 5])  # 12 % 5 != 0: padded grid
def test_region_perturbation_equals_quantus(cnn, batch, order, patch_size):
    x, y, a = batch
    ours = region_perturbation(
        cnn,
        x,
        y,
        a,
        make_baseline("black", x),
        order=order,
        patch_size=patch_size,
        max_regions=7,
        output="softmax",
        batch_size=5,
    )
    metric = quantus.RegionPerturbation(
        patch_size=patch_size,
        order=order,
        regions_evaluation=7,
        perturb_baseline="black",
        disable_warnings=True,
    )
    theirs = np.array(
        metric(
            model=cnn,
            x_batch=_np(x),
            y_batch=y.numpy(),
            a_batch=_np(a),
            device="cpu",
            softmax=True,
            batch_size=6,
        )
    )
    assert ours.shape == (6, 8)
    drops = (ours[:, :1] - ours[:, 1:]).numpy()
    np.testing.assert_allclose(drops, theirs, rtol=0, atol=TOL)


def test_lerf_pixel_flipping_equals_quantus_on_negated_attribution(cnn, batch):
    """Quantus has no LeRF pixel flipping; LeRF on a == MoRF on -a (tie-free)."""
    x, y, a = batch
    base = make_baseline("black", x)
    ours = pixel_flipping(cnn, x, y, a, base, order="lerf", features_in_step=4)
    theirs = np.array(
        quantus.PixelFlipping(features_in_step=4, disable_warnings=True)(
            model=cnn, x_batch=_np(x), y_batch=y.numpy(), a_batch=_np(-a), device="cpu"
        )
    )
    np.testing.assert_allclose(ours[:, 1:].numpy(), theirs, rtol=0, atol=TOL)
