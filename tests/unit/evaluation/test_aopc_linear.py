"""AOPC / AUC / ABPC on a linear model whose exact attribution w ⊙ x is known, against hand
computations (closed forms; float64, tolerance 1e-12)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from xai_serve.evaluation.baselines import make_baseline
from xai_serve.evaluation.perturbation import pixel_flipping
from xai_serve.evaluation.scores import abpc, aopc, auc
from xai_serve.evaluation.single_pixel_aopc import aopc_single_pixel, single_pixel_order


def linear_model(w: torch.Tensor, b: torch.Tensor) -> nn.Module:
    lin = nn.Linear(w.shape[1], w.shape[0]).double()
    with torch.no_grad():
        lin.weight.copy_(w)
        lin.bias.copy_(b)
    return nn.Sequential(nn.Flatten(), lin).eval()


def test_hand_computed_aopc_auc_abpc():
    # one 1x2x2 image, class 0 weights w, contributions r = w * x = [0.5, -2, 6, 1], f(x) = 5.6
    w = torch.zeros(3, 4, dtype=torch.float64)
    w[0] = torch.tensor([0.5, -1.0, 2.0, 0.25])
    model = linear_model(w, torch.tensor([0.1, 0.0, 0.0], dtype=torch.float64))
    x = torch.tensor([1.0, 2.0, 3.0, 4.0], dtype=torch.float64).view(1, 1, 2, 2)
    y = torch.tensor([0])
    attr = w[0].view(1, 1, 2, 2) * x
    zero = make_baseline("zero", x)
    morf = pixel_flipping(model, x, y, attr, zero, order="morf", output="logit")
    lerf = pixel_flipping(model, x, y, attr, zero, order="lerf", output="logit")
    # MoRF removes 6, 1, 0.5, -2; LeRF removes -2, 0.5, 1, 6
    np.testing.assert_allclose(morf[0].numpy(), [5.6, -0.4, -1.4, -1.9, 0.1], atol=1e-12)
    np.testing.assert_allclose(lerf[0].numpy(), [5.6, 7.6, 7.1, 6.1, 0.1], atol=1e-12)
    assert aopc(morf).item() == pytest.approx((0 + 6 + 7 + 7.5 + 5.5) / 5, abs=1e-12)
    assert aopc(lerf).item() == pytest.approx((0 - 2 - 1.5 - 0.5 + 5.5) / 5, abs=1e-12)
    assert auc(morf).item() == pytest.approx(-0.9 - 1.65 - 0.9, abs=1e-12)
    assert auc(lerf).item() == pytest.approx(7.35 + 6.6 + 3.1, abs=1e-12)
    assert abpc(lerf, morf).item() == pytest.approx(17.05 + 3.45, abs=1e-12)


def test_aopc_matches_sorted_contributions_random_linear():
    g = torch.Generator().manual_seed(0)
    n, c, hw = 5, 4, 6
    w = torch.randn(c, hw * hw, generator=g, dtype=torch.float64)
    b = torch.randn(c, generator=g, dtype=torch.float64)
    model = linear_model(w, b)
    x = torch.randn(n, 1, hw, hw, generator=g, dtype=torch.float64)
    y = torch.randint(0, c, (n,), generator=g)
    attr = w[y].view(n, 1, hw, hw) * x
    black = make_baseline("black", x)
    for step in (1, 5):
        curve = pixel_flipping(
            model, x, y, attr, black, order="morf", features_in_step=step, output="logit", batch_size=13
        )
        for i in range(n):
            xi, bi = x[i].flatten().numpy(), black[i].flatten().numpy()
            wi = w[y[i]].numpy()
            order = np.argsort(-(wi * xi), kind="stable")
            drops = [0.0]
            for k in range(1, -(-hw * hw // step) + 1):
                removed = order[: k * step]
                drops.append(float((wi[removed] * (xi[removed] - bi[removed])).sum()))
            np.testing.assert_allclose((curve[i, 0] - curve[i]).numpy(), drops, atol=1e-10)
            assert aopc(curve[i : i + 1]).item() == pytest.approx(np.mean(drops), abs=1e-10)
    # with the zero baseline the exact attribution is the best MoRF ordering: it beats random
    zero = make_baseline("zero", x)
    best = aopc(pixel_flipping(model, x, y, attr, zero, order="morf", output="logit"))
    rnd = aopc(
        pixel_flipping(
            model,
            x,
            y,
            attr,
            zero,
            order="random",
            output="logit",
            generator=torch.Generator().manual_seed(3),
        )
    )
    assert (best > rnd).all()


def test_single_pixel_aopc_hand_computation():
    """The General Pattern Theory variant: non-cumulative single-pixel perturbation, logit, running mean /
    (L+1)."""
    g = torch.Generator().manual_seed(0)
    w = torch.randn(3, 16, generator=g, dtype=torch.float64)
    model = linear_model(w, torch.zeros(3, dtype=torch.float64))
    x = torch.randn(2, 1, 4, 4, generator=g, dtype=torch.float64)
    y = torch.tensor([1, 2])
    attr = (w[y].view(2, 1, 4, 4) * x).abs()
    out = aopc_single_pixel(
        model, x, y, attr, n_steps=6, absolute=True, generator=torch.Generator().manual_seed(7)
    )
    # replay the documented draw sequence: picks first, then one U(-0.5, 0.5) per step
    g2 = torch.Generator().manual_seed(7)
    picks = single_pixel_order(attr, 6, g2)
    u = torch.rand((2, 6), generator=g2, dtype=torch.float64) - 0.5
    for i in range(2):
        xi = x[i].flatten()
        xmax = xi.abs().max()
        drops = [float(w[y[i], p] * (xi[p] - xmax * u[i, l])) for l, p in enumerate(picks[i].tolist())]
        expect = np.cumsum(drops) / (np.arange(1, 7) + 1)
        np.testing.assert_allclose(out[i].numpy(), expect, atol=1e-12)
        # tie-free absolute attribution: picks are the 6 largest, in order, no repeats
        assert picks[i].tolist() == torch.argsort(attr[i].flatten(), descending=True)[:6].tolist()


def test_single_pixel_order_reselects_in_signed_mode():
    a = torch.tensor([[0.0, 3.0, -1.0, 2.0, -5.0]])
    picks = single_pixel_order(a, 5, torch.Generator().manual_seed(0))[0].tolist()
    assert picks[:2] == [1, 3]
    # afterwards every remaining score is <= 0: the max is 0, shared by indices 0, 1, 3 (re-selection)
    assert set(picks[2:]) <= {0, 1, 3}
