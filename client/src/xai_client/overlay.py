"""Render heatmaps as PNG overlays on their image (numpy + Pillow only, no torch, no matplotlib).

Signed maps (whose sign means evidence for / against, e.g. LRP, gradient) use a diverging
blue-white-red map centred on zero, scaled by the largest magnitude; unsigned maps use a sequential
black-red-yellow-white ramp scaled to their maximum (a non-negative map keeps 0 as "none"). The
map's opacity follows its magnitude, so the image shows through where there is no relevance.
"""

from __future__ import annotations

import io

import numpy as np
from PIL import Image

# diverging: blue (-1) -> white (0) -> red (+1)
_DIVERGING = np.array(
    [[0.02, 0.19, 0.38], [0.26, 0.58, 0.76], [0.97, 0.97, 0.97], [0.84, 0.38, 0.30], [0.40, 0.0, 0.12]]
)
# sequential: black -> red -> yellow -> white
_SEQUENTIAL = np.array([[0.0, 0.0, 0.0], [0.7, 0.05, 0.05], [1.0, 0.6, 0.0], [1.0, 1.0, 0.6]])


def _ramp(colours: np.ndarray, t: np.ndarray) -> np.ndarray:
    """Piecewise-linear colour map: ``t`` in [0, 1] -> RGB in [0, 1], shape t.shape + (3,)."""
    t = np.clip(t, 0.0, 1.0) * (len(colours) - 1)
    lo = np.floor(t).astype(int).clip(0, len(colours) - 2)
    frac = (t - lo)[..., None]
    return colours[lo] * (1 - frac) + colours[lo + 1] * frac


def to_2d(heatmap: np.ndarray) -> np.ndarray:
    """Collapse a [C, H, W] (or [1, C, H, W]) map to [H, W] by summing channels."""
    h = np.asarray(heatmap, dtype=np.float64)
    while h.ndim > 3 and h.shape[0] == 1:
        h = h[0]
    if h.ndim == 3:
        h = h.sum(axis=0)
    if h.ndim != 2:
        raise ValueError(f"cannot render a heatmap of shape {heatmap.shape}")
    return h


def colourise(heatmap: np.ndarray, *, signed: bool) -> tuple[np.ndarray, np.ndarray]:
    """RGB image in [0, 1] (H, W, 3) and opacity (H, W) for a map."""
    h = to_2d(heatmap)
    h = np.nan_to_num(h)
    if signed:
        scale = float(np.abs(h).max()) or 1.0
        v = h / scale
        return _ramp(_DIVERGING, (v + 1) / 2), np.abs(v)
    lo, hi = float(h.min()), float(h.max())
    if lo >= 0:  # non-negative maps (Grad-CAM, |gradient|): 0 is "no relevance"
        v = h / (hi or 1.0)
    elif hi - lo <= 1e-6 * max(abs(hi), abs(lo)):  # constant up to float noise: do not amplify it
        v = np.ones_like(h)
    else:
        v = (h - lo) / (hi - lo)
    return _ramp(_SEQUENTIAL, v), v


def image_to_rgb(image: np.ndarray) -> np.ndarray:
    """[C, H, W] / [H, W, C] / [H, W] image (uint8 or float in [0, 1]) -> float RGB [H, W, 3]."""
    img = np.asarray(image)
    if img.dtype == np.uint8:
        img = img.astype(np.float64) / 255.0
    img = img.astype(np.float64)
    if img.ndim == 3 and img.shape[0] in (1, 3) and img.shape[-1] not in (1, 3):
        img = np.moveaxis(img, 0, -1)
    if img.ndim == 3 and img.shape[-1] == 1:
        img = img[..., 0]
    if img.ndim == 2:
        img = np.repeat(img[..., None], 3, axis=-1)
    if img.ndim != 3 or img.shape[-1] != 3:
        raise ValueError(f"cannot render an image of shape {image.shape}")
    return np.clip(img, 0.0, 1.0)


def _resize(rgb: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    if rgb.shape[:2] == (size[1], size[0]):
        return rgb
    pil = Image.fromarray((np.clip(rgb, 0, 1) * 255).round().astype(np.uint8))
    return np.asarray(pil.resize(size, Image.Resampling.BILINEAR), dtype=np.float64) / 255.0


def overlay(
    image: np.ndarray | None, heatmap: np.ndarray, *, signed: bool, kind: str = "heatmap", scale: int = 1
) -> np.ndarray:
    """uint8 RGB overlay [H*scale, W*scale, 3] of ``heatmap`` on ``image`` (greyed)."""
    if kind == "image":  # a generated class image: show it as an image
        rgb = image_to_rgb(
            heatmap
            if np.asarray(heatmap).ndim != 3
            else _normalise_image(np.asarray(heatmap, dtype=np.float64))
        )
    else:
        colours, alpha = colourise(heatmap, signed=signed)
        if image is None:
            rgb = colours
        else:
            base = image_to_rgb(image)
            grey = base.mean(axis=-1, keepdims=True).repeat(3, axis=-1)
            h, w = colours.shape[:2]
            grey = _resize(grey, (w, h))
            a = (0.25 + 0.75 * alpha)[..., None]
            rgb = grey * (1 - a) + colours * a
    out = (np.clip(rgb, 0, 1) * 255).round().astype(np.uint8)
    if scale > 1:
        out = out.repeat(scale, axis=0).repeat(scale, axis=1)
    return out


def _normalise_image(img: np.ndarray) -> np.ndarray:
    lo, hi = float(img.min()), float(img.max())
    return (img - lo) / ((hi - lo) or 1.0)


def to_png(rgb: np.ndarray) -> bytes:
    """Encode an RGB/grey uint8 array as PNG bytes."""
    buf = io.BytesIO()
    Image.fromarray(np.asarray(rgb, dtype=np.uint8)).save(buf, format="PNG")
    return buf.getvalue()


def overlay_png(
    image: np.ndarray | None, heatmap: np.ndarray, *, signed: bool, kind: str = "heatmap", scale: int = 1
) -> bytes:
    """PNG bytes of :func:`overlay`."""
    return to_png(overlay(image, heatmap, signed=signed, kind=kind, scale=scale))
