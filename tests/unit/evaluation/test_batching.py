"""Perturbation steps are evaluated in batches across steps and images, never one forward per step."""

from __future__ import annotations

import math

import torch

from xai_serve.evaluation.baselines import make_baseline
from xai_serve.evaluation.perturbation import pixel_flipping


class CountingModel(torch.nn.Module):
    def __init__(self, inner: torch.nn.Module) -> None:
        super().__init__()
        self.inner = inner
        self.calls: list[int] = []

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.calls.append(x.shape[0])
        return self.inner(x)


def test_forward_count_is_inputs_over_batch_size(cnn, batch):
    x, y, a = batch  # 6 images of 12x12 = 144 steps each
    model = CountingModel(cnn)
    curves = pixel_flipping(model, x, y, a, make_baseline("black", x), batch_size=500)
    n_inputs = 6 * 145
    assert len(model.calls) == math.ceil(n_inputs / 500) and sum(model.calls) == n_inputs
    # independent of how (image, step) pairs are chunked (37 splits runs of steps across images)
    ref = pixel_flipping(cnn, x, y, a, make_baseline("black", x), batch_size=37)
    torch.testing.assert_close(curves, ref, rtol=0, atol=1e-6)
