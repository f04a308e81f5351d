"""Guided-backprop post-processing as the SimpleNet study defines it
(docs/methods.md#saliency-post-processing), numpy only.

* :func:`grayscale`: ``s = Σ_c |g_c|``; ``s = clip((s - min s) / (P99(s) - min s), 0, 1)``;
* :func:`positive_negative`: ``pos = max(0, g) / max(g)``, ``neg = max(0, -g) / (-min g)``;
* :func:`gradient_image`: min-max normalisation to [0, 1], then uint8 (the study's saved images);
* :data:`SEED_SUFFIXES`: the study's file names ``<name>_Guided_BP_color``, ``_Guided_BP_gray``,
  ``_pos_sal``, ``_neg_sal``.

:func:`render` gives the map a rendering mode draws (``color``: the values as they are, signed;
``gray``, ``pos``, ``neg``: unsigned maps in [0, 1]).
"""

from __future__ import annotations

import numpy as np

RENDERS = ("color", "gray", "pos", "neg")
SEED_SUFFIXES = {"color": "_Guided_BP_color", "gray": "_Guided_BP_gray", "pos": "_pos_sal", "neg": "_neg_sal"}


def grayscale(g: np.ndarray) -> np.ndarray:
    """``[C, H, W]`` -> ``[1, H, W]`` in [0, 1]: Σ_c |g|, min-subtracted, clipped at the 99th percentile."""
    s = np.abs(np.asarray(g, dtype=np.float64)).sum(axis=0, keepdims=True)
    low, high = float(s.min()), float(np.percentile(s, 99))
    if high <= low:  # constant map (or one outlier above a constant 99 %): nothing to show
        return np.zeros_like(s, dtype=np.float32)
    return np.clip((s - low) / (high - low), 0.0, 1.0).astype(np.float32)


def positive_negative(g: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``(pos, neg)``, each shaped like ``g``: ``max(0, g) / max g`` and ``max(0, -g) / -min g``
    (an all-zero part when ``g`` has no positive / negative value)."""
    g = np.asarray(g, dtype=np.float64)
    top, bottom = float(g.max()), float(g.min())
    pos = np.maximum(0.0, g) / top if top > 0 else np.zeros_like(g)
    neg = np.maximum(0.0, -g) / -bottom if bottom < 0 else np.zeros_like(g)
    return pos.astype(np.float32), neg.astype(np.float32)


def render(g: np.ndarray, mode: str) -> tuple[np.ndarray, bool]:
    """``(map, signed)`` that rendering mode ``mode`` (one of :data:`RENDERS`) draws for values ``g``."""
    if mode == "color":
        return np.asarray(g, dtype=np.float32), True
    if mode == "gray":
        return grayscale(g), False
    if mode in ("pos", "neg"):
        pos, neg = positive_negative(g)
        return (pos if mode == "pos" else neg), False
    raise ValueError(f"render mode {mode!r} is not one of {', '.join(RENDERS)}")


def gradient_image(g: np.ndarray) -> np.ndarray:
    """The SimpleNet study's ``save_gradient_images``: min-max to [0, 1], uint8 ``[H, W, C]`` (C 1 or 3)."""
    g = np.asarray(g, dtype=np.float64)
    low, high = float(g.min()), float(g.max())
    unit = (g - low) / (high - low) if high > low else np.zeros_like(g)
    img = np.rint(unit * 255).astype(np.uint8)
    return np.transpose(img, (1, 2, 0)) if img.ndim == 3 else img


def seed_images(g: np.ndarray) -> dict[str, np.ndarray]:
    """The four images the SimpleNet study saves for one gradient, by suffix (``_Guided_BP_color``...)."""
    pos, neg = positive_negative(g)
    maps = {"color": g, "gray": grayscale(g), "pos": pos, "neg": neg}
    return {SEED_SUFFIXES[k]: gradient_image(v) for k, v in maps.items()}
