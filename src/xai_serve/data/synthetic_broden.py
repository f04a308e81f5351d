"""A generator of small synthetic Broden-format folders with known concepts, for tests and the demo.

Each image has a scene (``indoor``: dark background, ``outdoor``: light), optionally a background
texture (``stripes`` or ``dots``, whole-image labels like Broden's scene/texture categories) and one to
three coloured shapes (objects ``circle`` / ``square`` / ``triangle``, colours ``red`` / ``green`` /
``blue`` / ``yellow``). Pixel categories: ``object`` (the shapes), ``color`` (the shapes' colours)
and ``part`` (``rim`` and ``core`` of every shape, written as two PNG layers that the reader OR-s).
The masks are drawn at ``mask_size`` from the same geometry as the image, so the generator also
returns the exact dense concept masks (``truth``) the reader must give back.
"""

from __future__ import annotations

import io
import os
from pathlib import Path

import numpy as np

from xai_serve.atomic import atomic_write_bytes
from xai_serve.data.broden_writer import write_broden_tables, write_label_png

CATEGORIES = {
    "object": ["circle", "square", "triangle"],
    "part": ["rim", "core"],
    "color": ["red", "green", "blue", "yellow"],
    "texture": ["stripes", "dots"],
    "scene": ["indoor", "outdoor"],
}
COLOURS = {"red": (220, 40, 40), "green": (40, 200, 60), "blue": (40, 70, 230), "yellow": (230, 210, 40)}


def _labels() -> list[tuple[int, str, str]]:
    out, number = [], 1
    for cat, names in CATEGORIES.items():
        for name in names:
            out.append((number, name, cat))
            number += 1
    return out


def _shape_mask(kind: str, cy: float, cx: float, r: float, size: int) -> np.ndarray:
    """Shape in unit coordinates sampled at pixel centres of a size x size grid."""
    g = (np.arange(size) + 0.5) / size
    y, x = np.meshgrid(g, g, indexing="ij")
    if kind == "circle":
        return (y - cy) ** 2 + (x - cx) ** 2 <= r * r
    if kind == "square":
        return (np.abs(y - cy) <= r * 0.85) & (np.abs(x - cx) <= r * 0.85)
    # triangle, apex up
    top, bottom = cy - r, cy + r
    half = (y - top) / (2 * r) * r
    return (y >= top) & (y <= bottom) & (np.abs(x - cx) <= half)


def _texture(kind: str, size: int) -> np.ndarray:
    g = np.arange(size) / size
    y, x = np.meshgrid(g, g, indexing="ij")
    if kind == "stripes":
        return (np.sin(2 * np.pi * 8 * (x + y)) > 0).astype(np.float32)
    if kind == "dots":
        return ((np.sin(2 * np.pi * 8 * x) > 0.7) & (np.sin(2 * np.pi * 8 * y) > 0.7)).astype(np.float32)
    return np.zeros((size, size), np.float32)


def write_synthetic_broden(
    root: str | os.PathLike[str],
    n_images: int = 40,
    *,
    image_size: int = 112,
    mask_size: int = 56,
    seed: int = 0,
) -> dict[str, np.ndarray]:
    """Write a Broden-format folder under ``root``; return the dense truth masks, concept name ->
    (n_images, mask_size, mask_size) bool (scene/texture labels as whole-image masks)."""
    root = Path(root)
    rng = np.random.default_rng(seed)
    labels = _labels()
    number_of = {name: number for number, name, _ in labels}
    truth = {name: np.zeros((n_images, mask_size, mask_size), bool) for _, name, _ in labels}
    index_rows = []
    for i in range(n_images):
        scene = "indoor" if rng.random() < 0.5 else "outdoor"
        texture = rng.choice(["stripes", "dots", "none"])
        base = 40.0 if scene == "indoor" else 190.0
        tex = _texture(str(texture), image_size)
        img = np.empty((image_size, image_size, 3), np.float32)
        img[...] = base + (50.0 if scene == "indoor" else -50.0) * tex[..., None]
        seg_obj = np.zeros((mask_size, mask_size), np.int64)
        seg_col = np.zeros((mask_size, mask_size), np.int64)
        seg_rim = np.zeros((mask_size, mask_size), np.int64)
        seg_core = np.zeros((mask_size, mask_size), np.int64)
        for _ in range(int(rng.integers(1, 4))):
            kind = str(rng.choice(CATEGORIES["object"]))
            colour = str(rng.choice(CATEGORIES["color"]))
            r = float(rng.uniform(0.12, 0.25))
            cy, cx = rng.uniform(r, 1 - r, size=2)
            big = _shape_mask(kind, cy, cx, r, image_size)
            img[big] = COLOURS[colour]
            small = _shape_mask(kind, cy, cx, r, mask_size)
            inner = _shape_mask(kind, cy, cx, r * 0.6, mask_size)
            seg_obj[small] = number_of[kind]
            seg_col[small] = number_of[colour]
            seg_core[small] = 0
            seg_rim[small] = 0
            seg_rim[small & ~inner] = number_of["rim"]
            seg_core[inner] = number_of["core"]
        # truth from the final (overdrawn) label images
        for seg in (seg_obj, seg_col, seg_rim, seg_core):
            for number in np.unique(seg):
                if number:
                    name = labels[int(number) - 1][1]
                    truth[name][i] |= seg == number
        truth[scene][i] = True
        if texture != "none":
            truth[str(texture)][i] = True
        stem = f"synthetic/{i:05d}"
        atomic_write_bytes(root / "images" / f"{stem}.jpg", _jpeg(img))
        for suffix, seg in (
            ("object", seg_obj),
            ("color", seg_col),
            ("part_1", seg_rim),
            ("part_2", seg_core),
        ):
            write_label_png(root / "images" / f"{stem}_{suffix}.png", seg)
        index_rows.append(
            {
                "image": f"{stem}.jpg",
                "split": "train" if i % 5 else "val",
                "ih": image_size,
                "iw": image_size,
                "sh": mask_size,
                "sw": mask_size,
                "color": f"{stem}_color.png",
                "object": f"{stem}_object.png",
                "part": f"{stem}_part_1.png;{stem}_part_2.png",
                "scene": str(number_of[scene]),
                "texture": "" if texture == "none" else str(number_of[str(texture)]),
            }
        )
    write_broden_tables(root, CATEGORIES, index_rows, truth, empty=("material",))
    return truth


def _jpeg(img: np.ndarray) -> bytes:
    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(np.clip(img, 0, 255).astype(np.uint8)).save(buf, format="JPEG", quality=95)
    return buf.getvalue()
