"""Class-image generation (SimpleNet + guided backprop, docs/methods.md#class-image): the target logit rises,
results are seeded and in pixel range."""

from __future__ import annotations

import pytest
import torch

from xai_serve.errors import InvalidParameterError
from xai_serve.explain import ModelContext, create_explainer
from xai_serve.explain.class_image import gaussian_blur


@pytest.mark.parametrize("mode", ["plain", "regularised"])
def test_target_logit_rises_and_is_seeded(zoo, mode: str) -> None:
    model, x = zoo("cnn", batch=2)
    # on 8x8 images the default blur (sigma 1 every 4th step) erases the ascent: blur gently here
    blur = {"blur_every": 10, "blur_radius": 0.5} if mode == "regularised" else {}
    params = {"mode": mode, "iterations": 30, "seed": 3, **blur}
    context = ModelContext((0.5,), (0.25,))
    result = create_explainer("class_image", model, context=context, **params).attribute(x, [2, 7])
    img = result.heatmap
    assert img.shape == x.shape and float(img.min()) >= 0 and float(img.max()) <= 1
    assert torch.allclose(img * 255, (img * 255).round())  # quantised to uint8 steps
    start = create_explainer("class_image", model, context=context, **{**params, "iterations": 1}).attribute(
        x, [2, 7]
    )
    assert all(a > b for a, b in zip(result.stats["target_score"], start.stats["target_score"], strict=True))
    again = create_explainer("class_image", model, context=context, **params)(x, [2, 7])
    assert torch.equal(again, img)


def test_needs_class_targets(zoo) -> None:
    model, x = zoo("cnn", batch=1)
    with pytest.raises(InvalidParameterError):
        create_explainer("class_image", model, iterations=2)(x, lambda out: out[:, 0])


def test_gaussian_blur_preserves_constants_and_mass() -> None:
    flat = torch.full((1, 2, 9, 9), 0.3, dtype=torch.float64)
    assert torch.allclose(gaussian_blur(flat, 1.0), flat)
    spike = torch.zeros(1, 1, 15, 15, dtype=torch.float64)
    spike[0, 0, 7, 7] = 1
    blurred = gaussian_blur(spike, 1.0)
    assert abs(float(blurred.sum()) - 1) < 1e-12 and float(blurred.max()) < 0.2
