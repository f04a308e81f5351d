"""Unit masks (docs/methods.md#compexp-algorithm, steps 2-3): exact per-unit quantile thresholds, bilinear
upsampling of a unit's activation map to the mask size, thresholding, packed storage.

Upsampling is PIL's ``Image.resize(BILINEAR)`` for an enlargement (= ``torch.nn.functional.interpolate``
with ``mode="bilinear", align_corners=False``), written as two small interpolation matrices so a
whole batch of maps is upsampled with two matrix products.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from xai_serve.dissection import bitsets

DEFAULT_QUANTILE = 0.005  # top 0.5% of a unit's activations (docs/methods.md#compexp-defaults)


def thresholds(activations: np.ndarray, quantile: float = DEFAULT_QUANTILE, chunk: int = 16) -> np.ndarray:
    """``T[u] = np.quantile(F[:, u], 1 - quantile)`` over every image and position (exact, linear
    interpolation). ``activations`` (N, U, h, w) may be a memory map; units are read ``chunk`` at a
    time."""
    u = activations.shape[1]
    out = np.empty(u, np.float64)
    for lo in range(0, u, chunk):
        block = np.asarray(activations[:, lo : lo + chunk], dtype=np.float64)
        block = np.moveaxis(block, 1, 0).reshape(block.shape[1], -1)
        out[lo : lo + chunk] = np.quantile(block, 1.0 - quantile, axis=1)
    return out


def interp_matrix(src: int, dst: int) -> np.ndarray:
    """(dst, src) matrix of bilinear (align_corners=False) interpolation weights."""
    m = np.zeros((dst, src), np.float64)
    if src == 1:
        m[:, 0] = 1.0
        return m
    x = (np.arange(dst) + 0.5) * (src / dst) - 0.5
    x = np.clip(x, 0.0, src - 1)
    i0 = np.floor(x).astype(int)
    i1 = np.minimum(i0 + 1, src - 1)
    frac = x - i0
    m[np.arange(dst), i0] += 1.0 - frac
    m[np.arange(dst), i1] += frac
    return m


def upsample(maps: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Bilinear upsampling of ``(..., h, w)`` maps to ``(..., H, W)`` (float32 result)."""
    maps = np.asarray(maps, dtype=np.float32)
    h, w = maps.shape[-2:]
    ry = interp_matrix(h, size[0]).astype(np.float32)
    rx = interp_matrix(w, size[1]).astype(np.float32)
    return np.matmul(np.matmul(ry, maps), rx.T)


@dataclass
class UnitMask:
    """A unit's binary mask over the data set: the images where it fires and their packed masks."""

    images: np.ndarray  # (m,) sorted int64
    bits: np.ndarray  # (m, words) uint64
    total: int  # |M_u|

    @classmethod
    def from_dense(cls, mask: np.ndarray) -> UnitMask:
        packed = bitsets.pack(np.asarray(mask, dtype=bool))
        images = np.flatnonzero(packed.any(axis=1))
        bits = packed[images]
        return cls(images=images.astype(np.int64), bits=bits, total=int(bitsets.popcount_rows(bits).sum()))


def unit_masks(
    activations: np.ndarray,
    units: range | list[int],
    thresh: np.ndarray,
    size: tuple[int, int],
    batch: int = 256,
) -> dict[int, UnitMask]:
    """``M_u[n] = upsample(F[n, u]) > T[u]`` for the images with ``max F[n, u] > T[u]`` (the others
    have an empty mask), packed, for each unit of ``units``."""
    units = list(units)
    n = activations.shape[0]
    lo_u, hi_u = min(units), max(units) + 1
    found: dict[int, list[tuple[np.ndarray, np.ndarray]]] = {u: [] for u in units}
    for lo in range(0, n, batch):
        block = np.asarray(activations[lo : lo + batch, lo_u:hi_u], dtype=np.float32)
        for u in units:
            maps = block[:, u - lo_u]
            t = thresh[u]
            hit = np.flatnonzero(maps.reshape(maps.shape[0], -1).max(axis=1) > t)
            if hit.size == 0:
                continue
            up = upsample(maps[hit], size) > t
            packed = bitsets.pack(up)
            keep = packed.any(axis=1)
            found[u].append((hit[keep] + lo, packed[keep]))
    out: dict[int, UnitMask] = {}
    nw = bitsets.words(size[0] * size[1])
    for u in units:
        if found[u]:
            images = np.concatenate([f[0] for f in found[u]]).astype(np.int64)
            bits = np.concatenate([f[1] for f in found[u]])
        else:
            images, bits = np.zeros(0, np.int64), np.zeros((0, nw), np.uint64)
        out[u] = UnitMask(images=images, bits=bits, total=int(bitsets.popcount_rows(bits).sum()))
    return out
