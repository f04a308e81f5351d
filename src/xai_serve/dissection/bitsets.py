"""Packed bitsets: boolean pixel masks stored 64 pixels per ``uint64`` word, counted with popcount.

A mask of H x W pixels is one row of ``words(H * W)`` words (little-endian bit order, padding bits
zero). Counting is ``np.bitwise_count`` (numpy >= 2.0), summed over the words of a row.
"""

from __future__ import annotations

import numpy as np

WORD_BITS = 64


def words(n_pixels: int) -> int:
    """Number of 64-bit words holding ``n_pixels`` bits."""
    return (int(n_pixels) + WORD_BITS - 1) // WORD_BITS


def pack(masks: np.ndarray) -> np.ndarray:
    """Pack boolean masks ``(..., H, W)`` into ``(..., words(H*W))`` uint64 rows."""
    masks = np.asarray(masks, dtype=bool)
    lead = masks.shape[:-2]
    flat = masks.reshape(*lead, -1)
    n = flat.shape[-1]
    nw = words(n)
    pad = nw * WORD_BITS - n
    if pad:
        flat = np.concatenate([flat, np.zeros((*lead, pad), dtype=bool)], axis=-1)
    packed = np.packbits(flat, axis=-1, bitorder="little")
    return np.ascontiguousarray(packed).view(np.uint64).reshape(*lead, nw)


def unpack(rows: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """Inverse of :func:`pack`: ``(..., words)`` uint64 -> boolean ``(..., H, W)``."""
    rows = np.ascontiguousarray(rows, dtype=np.uint64)
    lead = rows.shape[:-1]
    bits = np.unpackbits(rows.view(np.uint8).reshape(*lead, -1), axis=-1, bitorder="little")
    n = shape[0] * shape[1]
    return bits[..., :n].astype(bool).reshape(*lead, *shape)


def full_row(n_pixels: int) -> np.ndarray:
    """One packed row with every one of ``n_pixels`` bits set (padding bits zero)."""
    return pack(np.ones((1, n_pixels), dtype=bool))


def popcount_rows(rows: np.ndarray) -> np.ndarray:
    """Number of set bits of every row of ``(..., words)`` -> ``(...,)`` int64."""
    return np.bitwise_count(rows).sum(axis=-1, dtype=np.int64)
