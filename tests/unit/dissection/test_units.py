"""Thresholds (exact quantiles), bilinear upsampling (PIL / torch parity) and unit masks by hand."""

from __future__ import annotations

import numpy as np
import torch
from PIL import Image

from xai_serve.dissection import bitsets
from xai_serve.dissection.units import thresholds, unit_masks, upsample


def test_thresholds_equal_numpy_quantile() -> None:
    rng = np.random.default_rng(0)
    f = rng.normal(size=(37, 5, 7, 7)).astype(np.float32)
    t = thresholds(f, 0.005, chunk=2)
    for u in range(5):
        assert t[u] == np.quantile(f[:, u].astype(np.float64), 0.995)
    assert np.allclose(thresholds(f, 0.2), np.quantile(f.transpose(1, 0, 2, 3).reshape(5, -1), 0.8, axis=1))


def test_upsample_matches_pil_and_torch() -> None:
    rng = np.random.default_rng(1)
    maps = rng.normal(size=(3, 7, 7)).astype(np.float32)
    ours = upsample(maps, (112, 112))
    ref = torch.nn.functional.interpolate(
        torch.from_numpy(maps)[None], size=(112, 112), mode="bilinear", align_corners=False
    )[0].numpy()
    np.testing.assert_allclose(ours, ref, atol=1e-5)
    pil = np.asarray(Image.fromarray(maps[0]).resize((112, 112), Image.Resampling.BILINEAR))
    np.testing.assert_allclose(ours[0], pil, atol=1e-4)


def test_unit_masks_by_hand() -> None:
    # one unit, 2x2 map upsampled to 4x4: each axis interpolates as [a, .75a+.25b, .25a+.75b, b],
    # so the corner value 4 becomes [[4, 3, 1, 0], [3, 2.25, .75, 0], [1, .75, .25, 0], [0, 0, 0, 0]]
    f = np.zeros((3, 1, 2, 2), np.float32)
    f[0, 0] = [[4.0, 0.0], [0.0, 0.0]]  # fires in image 0 only
    f[2, 0] = [[1.0, 1.0], [1.0, 1.0]]  # below the threshold everywhere
    masks = unit_masks(f, [0], np.array([2.0]), (4, 4))
    expected = np.zeros((4, 4), bool)
    expected[:2, :2] = True  # 4, 3, 3, 2.25 > 2
    m = masks[0]
    assert m.images.tolist() == [0]
    np.testing.assert_array_equal(bitsets.unpack(m.bits, (4, 4))[0], expected)
    assert m.total == 4


def test_pack_unpack_round_trip_odd_size() -> None:
    rng = np.random.default_rng(2)
    m = rng.random((5, 13, 11)) < 0.3
    p = bitsets.pack(m)
    assert p.shape == (5, bitsets.words(143))
    np.testing.assert_array_equal(bitsets.unpack(p, (13, 11)), m)
    np.testing.assert_array_equal(bitsets.popcount_rows(p), m.reshape(5, -1).sum(axis=1))
