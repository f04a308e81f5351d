"""The General Pattern Theory AOPC variant ``aopc_single_pixel`` (docs/methods.md#gpt-single-pixel-aopc),
batched.

Per sample, with the attribution ``a`` normalised by max|a| and the true-class *logit* f:
for L = 1..n_steps, pick p_L = argmax(a) (ties uniformly at random), set a[p_L] = 0, and
perturb *only* pixel p_L of the original x (non-cumulative) with ``max|x| * U(-0.5, 0.5)``;
``AOPC[L] = sum_{l<=L} (f(x) - f(x_l)) / (L + 1)``.

Documented deviations from Samek's AOPC kept on purpose: no accumulation, single pixels, logit
instead of probability, and in signed mode re-selection of an already zeroed pixel once every
remaining score is <= 0. The original General Pattern Theory code's bug of reusing one image for all
repetitions is not kept: every sample is its own image.
"""

from __future__ import annotations

import torch

from xai_serve.evaluation.perturbation import Model, class_scores


def single_pixel_order(
    attribution: torch.Tensor, n_steps: int, generator: torch.Generator | None = None
) -> torch.Tensor:
    """(B, n_steps) flat indices picked by the original code's zero-the-max loop (with re-selection)."""
    a = attribution.detach().reshape(attribution.shape[0], -1).to("cpu", torch.float64).clone()
    m = a.abs().amax(dim=1, keepdim=True)
    a = a / torch.where(m > 0, m, torch.ones_like(m))
    rows = torch.arange(a.shape[0])
    picks = []
    for _ in range(n_steps):
        is_max = a == a.amax(dim=1, keepdim=True)
        r = torch.rand(a.shape, generator=generator, dtype=torch.float64)
        p = torch.where(is_max, r, torch.full_like(r, -1.0)).argmax(dim=1)
        picks.append(p)
        a[rows, p] = 0.0
    return torch.stack(picks, dim=1)


@torch.no_grad()
def aopc_single_pixel(
    model: Model,
    x: torch.Tensor,
    target: torch.Tensor,
    attribution: torch.Tensor,
    *,
    n_steps: int = 75,
    absolute: bool = False,
    generator: torch.Generator | None = None,
    batch_size: int = 1024,
) -> torch.Tensor:
    """AOPC_L for L = 1..n_steps per sample, (B, n_steps) float64."""
    b = x.shape[0]
    a = attribution.abs() if absolute else attribution
    picks = single_pixel_order(a, n_steps, generator)  # (B, L)
    xmax = x.reshape(b, -1).abs().amax(dim=1)
    noise = torch.rand((b, n_steps), generator=generator, dtype=torch.float64) - 0.5
    values = (xmax.view(-1, 1).to(torch.float64).cpu() * noise).to(x.dtype)
    f0 = class_scores(model(x), target, "logit").to("cpu", torch.float64)
    drops = torch.empty((b, n_steps), dtype=torch.float64)
    pairs_b = torch.arange(b).repeat_interleave(n_steps)
    pairs_l = torch.arange(n_steps).repeat(b)
    for start in range(0, pairs_b.numel(), batch_size):
        bi = pairs_b[start : start + batch_size]
        li = pairs_l[start : start + batch_size]
        xp = x[bi.to(x.device)].reshape(bi.numel(), -1).clone()
        rows = torch.arange(bi.numel(), device=x.device)
        xp[rows, picks[bi, li].to(x.device)] = values[bi, li].to(x.device)
        f = class_scores(model(xp.reshape(bi.numel(), *x.shape[1:])), target[bi.to(target.device)], "logit")
        drops[bi, li] = f0[bi] - f.to("cpu", torch.float64)
    steps = torch.arange(1, n_steps + 1, dtype=torch.float64)
    return drops.cumsum(dim=1) / (steps + 1)
