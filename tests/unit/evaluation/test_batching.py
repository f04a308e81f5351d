"""Perturbation steps are evaluated in batches across steps and images, never one forward per step."""

from __future__ import annotations

import math

import torch

from xai_serve.evaluation.baselines import make_baseline
from xai_serve.evaluation.perturbation import forward_chunk, pixel_flipping


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
    probe, *calls = model.calls  # one probe pass of one input sizes the chunks from memory
    assert probe == 1
    assert len(calls) == math.ceil(n_inputs / 500) and sum(calls) == n_inputs
    # independent of how (image, step) pairs are chunked (37 splits runs of steps across images)
    ref = pixel_flipping(cnn, x, y, a, make_baseline("black", x), batch_size=37)
    torch.testing.assert_close(curves, ref, rtol=0, atol=1e-6)


def test_chunks_are_sized_from_the_largest_activation(cnn, batch):
    x, _y, _a = batch
    model = CountingModel(cnn)
    sizes: list[int] = [x[:1].numel() * x.element_size()]
    hooks = [
        m.register_forward_hook(lambda _m, _i, o: sizes.append(o.numel() * o.element_size()))
        for m in cnn.modules()
        if next(m.children(), None) is None
    ]
    with torch.no_grad():
        cnn(x[:1])
    for h in hooks:
        h.remove()
    budget = 3 * max(sizes)  # room for 3 inputs per pass
    assert forward_chunk(model, x[:1], 500, budget=budget) == 3
    assert forward_chunk(model, x[:1], 2, budget=budget) == 2  # the caller's limit still caps it
    assert forward_chunk(lambda t: cnn(t), x[:1], 7) == 7  # not a module: the limit
