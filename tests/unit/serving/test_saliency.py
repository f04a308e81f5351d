"""The SimpleNet study's guided-backprop post-processing (docs/methods.md#saliency-post-processing) on
hand-made arrays."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image
from xai_client.saliency import gradient_image, grayscale, positive_negative, render, seed_images


def test_grayscale_sums_abs_channels_and_clips_at_p99() -> None:
    g = np.zeros((3, 10, 10))
    g[0] = np.arange(100).reshape(10, 10)  # |.| summed over channels: 0..99 (+ sign noise below)
    g[1] = -g[0] / 2
    s = np.abs(g).sum(0)
    low, p99 = s.min(), np.percentile(s, 99)
    expected = np.clip((s - low) / (p99 - low), 0, 1)[None]
    got = grayscale(g)
    np.testing.assert_allclose(got, expected, rtol=1e-6)
    assert got.shape == (1, 10, 10) and got.max() == 1.0 and got.min() == 0.0
    assert (got == 1.0).sum() == 1  # only the value above the 99th percentile is clipped (and P99 itself)


def test_positive_negative_saliency() -> None:
    g = np.array([[[2.0, -4.0], [1.0, 0.0]]])
    pos, neg = positive_negative(g)
    np.testing.assert_array_equal(pos, [[[1.0, 0.0], [0.5, 0.0]]])
    np.testing.assert_array_equal(neg, [[[0.0, 1.0], [0.0, 0.0]]])
    pos, neg = positive_negative(np.abs(g))  # no negative value: an all-zero negative map
    assert not neg.any() and pos.max() == 1.0


def test_render_modes_and_seed_images(tmp_path) -> None:
    g = np.random.default_rng(0).normal(size=(3, 8, 8))
    assert render(g, "color")[1] is True
    for mode in ("gray", "pos", "neg"):
        shown, signed = render(g, mode)
        assert not signed and shown.min() >= 0 and shown.max() <= 1
    with pytest.raises(ValueError, match="render mode"):
        render(g, "rainbow")
    images = seed_images(g)
    assert sorted(images) == ["_Guided_BP_color", "_Guided_BP_gray", "_neg_sal", "_pos_sal"]
    color = images["_Guided_BP_color"]
    assert color.shape == (8, 8, 3) and color.dtype == np.uint8 and color.min() == 0 and color.max() == 255
    expected = np.rint((g - g.min()) / (g.max() - g.min()) * 255).astype(np.uint8).transpose(1, 2, 0)
    np.testing.assert_array_equal(color, expected)
    assert gradient_image(np.zeros((1, 4, 4))).max() == 0
    Image.fromarray(color).save(tmp_path / "x.png")
