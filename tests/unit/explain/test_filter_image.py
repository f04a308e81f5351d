"""``filter_image`` (the SimpleNet study's filter visualisation): the study's loop written out directly
on a Sequential model is the reference; plus determinism, bounds, and a clean model afterwards."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from xai_serve.errors import InvalidParameterError
from xai_serve.explain import create_explainer, list_methods, model_hooks
from xai_serve.explain.context import ModelContext

MEAN, STD = (0.4, 0.5, 0.6), (0.2, 0.25, 0.3)


def _model() -> nn.Sequential:
    torch.manual_seed(0)
    return nn.Sequential(
        nn.Conv2d(3, 6, 3, padding=1),
        nn.ReLU(),
        nn.Conv2d(6, 8, 3, padding=1),
        nn.ReLU(),
        nn.AdaptiveAvgPool2d(1),
        nn.Flatten(),
        nn.Linear(8, 4),
    ).eval()


def _seed_loop(model: nn.Sequential, index: int, f: int, shape, steps: int, seed: int) -> torch.Tensor:
    """The SimpleNet study's cnn_layer_visualization loop: Adam(lr 0.1, wd 1e-6) on the normalised image."""
    mean = torch.tensor(MEAN).view(1, -1, 1, 1)
    std = torch.tensor(STD).view(1, -1, 1, 1)
    start = torch.randint(150, 181, (1, *shape), generator=torch.Generator().manual_seed(seed)).float()
    z = ((start / 255 - mean) / std).requires_grad_(True)
    opt = torch.optim.Adam([z], lr=0.1, weight_decay=1e-6)
    for _ in range(steps):
        opt.zero_grad()
        a = z
        for i, layer in enumerate(model):
            a = layer(a)
            if i == index:
                break
        (-torch.mean(a[0, f])).backward()
        opt.step()
    return ((z.detach() * std + mean).clamp(0, 1) * 255).round() / 255


def test_equals_the_seed_loop_and_raises_the_activation() -> None:
    model = _model()
    x = torch.randn(2, 3, 12, 12)
    explainer = create_explainer(
        "filter_image", model, context=ModelContext.of(MEAN, STD), layer=2, filter=5, iterations=12
    )
    result = explainer.attribute(x)
    assert all(p.grad is None for p in model.parameters())  # (the study's loop below fills them)
    expected = _seed_loop(model, 2, 5, (3, 12, 12), 12, 0)
    torch.testing.assert_close(result.heatmap[:1], expected, rtol=0, atol=1.5 / 255)
    assert (result.heatmap[:1] != expected).float().mean() < 0.01  # equal up to rare rounding ties
    assert torch.equal(result.heatmap[0], result.heatmap[1])  # the same image for every row
    img = result.heatmap
    assert img.min() >= 0 and img.max() <= 1 and torch.equal((img * 255).round(), img * 255)
    one_step = create_explainer(
        "filter_image", model, context=ModelContext.of(MEAN, STD), layer=2, filter=5, iterations=1
    ).attribute(x)
    assert result.stats["activation"][0] > one_step.stats["activation"][0]
    assert result.layer == "2"
    assert model_hooks(model) == []


def test_seeded_and_bounded() -> None:
    model = _model()
    x = torch.randn(1, 3, 8, 8)
    a = create_explainer("filter_image", model, layer="0", filter=1, iterations=3, seed=4)(x)
    b = create_explainer("filter_image", model, layer="0", filter=1, iterations=3, seed=4)(x)
    c = create_explainer("filter_image", model, layer="0", filter=1, iterations=3, seed=5)(x)
    assert torch.equal(a, b) and not torch.equal(a, c)
    spec = list_methods()["filter_image"]
    assert spec.iterations == "iterations" and spec.output == "image" and not spec.targeted
    assert spec.work({"iterations": "40"}) == 40  # what the server's cost limits count
    with pytest.raises(InvalidParameterError, match="filter"):
        create_explainer("filter_image", model, layer="0", filter=99, iterations=1)(x)
    with pytest.raises(InvalidParameterError, match="iterations"):
        create_explainer("filter_image", model, iterations=0)
    assert model_hooks(model) == []
