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
    image: np.ndarray | None,
    heatmap: np.ndarray,
    *,
    signed: bool,
    kind: str = "heatmap",
    scale: int = 1,
    badge: bool | None = None,
) -> np.ndarray:
    """uint8 RGB overlay [H*scale, W*scale, 3] of ``heatmap`` on ``image`` (greyed); with ``badge``
    (a credential's verdict, see :func:`draw_badge`) a small pass / fail badge in the corner."""
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
    return out if badge is None else draw_badge(out, badge)


BADGE_PASS = (27, 158, 60)  # green square with a white tick: the method passed its sanity check
BADGE_FAIL = (200, 30, 30)  # red square with a white cross: it failed


def draw_badge(rgb: np.ndarray, passed: bool) -> np.ndarray:
    """A copy of uint8 ``rgb`` [H, W, 3] with a credential badge in the top-right corner: a square
    (an eighth of the shorter side, at least 5 px) green with a tick if ``passed``, else red with a
    cross, outlined in white."""
    from PIL import ImageDraw

    img = Image.fromarray(np.ascontiguousarray(rgb, dtype=np.uint8))
    h, w = rgb.shape[:2]
    side = max(5, min(h, w) // 8)
    x0, y0 = w - side - max(1, side // 8), max(1, side // 8)
    x1, y1 = x0 + side - 1, y0 + side - 1
    draw = ImageDraw.Draw(img)
    draw.rectangle((x0, y0, x1, y1), fill=BADGE_PASS if passed else BADGE_FAIL, outline=(255, 255, 255))
    lw = max(1, side // 6)
    m = max(1, side // 4)
    if passed:
        tick = (x0 + m, y0 + side // 2, x0 + side // 2 - 1, y1 - m, x1 - m, y0 + m)
        draw.line(tick, fill="white", width=lw)
    else:
        draw.line((x0 + m, y0 + m, x1 - m, y1 - m), fill="white", width=lw)
        draw.line((x0 + m, y1 - m, x1 - m, y0 + m), fill="white", width=lw)
    return np.asarray(img)


def _normalise_image(img: np.ndarray) -> np.ndarray:
    lo, hi = float(img.min()), float(img.max())
    return (img - lo) / ((hi - lo) or 1.0)


def to_png(rgb: np.ndarray) -> bytes:
    """Encode an RGB/grey uint8 array as PNG bytes."""
    buf = io.BytesIO()
    Image.fromarray(np.asarray(rgb, dtype=np.uint8)).save(buf, format="PNG")
    return buf.getvalue()


def overlay_png(
    image: np.ndarray | None,
    heatmap: np.ndarray,
    *,
    signed: bool,
    kind: str = "heatmap",
    scale: int = 1,
    badge: bool | None = None,
) -> bytes:
    """PNG bytes of :func:`overlay`."""
    return to_png(overlay(image, heatmap, signed=signed, kind=kind, scale=scale, badge=badge))


def filters_overlay(
    image: np.ndarray | None,
    heatmap: np.ndarray,
    maps: list[np.ndarray],
    *,
    signed: bool,
    scale: int = 1,
    badge: bool | None = None,
    top: int = 4,
) -> np.ndarray:
    """The ``decomposed`` method's picture: the class map's overlay, then the first ``top`` filter
    activation maps (largest contribution first, each [H, W]) overlaid on the image, side by side with
    a 2-pixel white gap; uint8 RGB [H*scale, (1+n)*W*scale + gaps, 3]."""
    panels = [overlay(image, heatmap, signed=signed, scale=scale, badge=badge)]
    panels += [overlay(image, np.asarray(m), signed=False, scale=scale) for m in list(maps)[:top]]
    h = panels[0].shape[0]
    gap = np.full((h, 2, 3), 255, dtype=np.uint8)
    row: list[np.ndarray] = []
    for i, panel in enumerate(panels):
        row += ([gap] if i else []) + [panel]
    return np.concatenate(row, axis=1)
