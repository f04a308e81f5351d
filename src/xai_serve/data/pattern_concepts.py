"""The pattern-theory digits with their generator's own concept maps, written as a Broden-format folder.

General Pattern Theory (Grenander; the pattern digits of Tjoa & Guan): every foreground pixel of a
``pattern_digits`` image was placed by one generator of the grown board, which has a *generator type*
(2 the seed generator, 3, 4 the terminal) and a *transformation* (the bond-symmetry-group element
1..8 that oriented it). This module draws the same images as ``load_pattern_digits(split, seed=...)``
(the same random draws in the same order) and keeps each image's grown board, rotated with the image
(nearest neighbour, so every mask pixel keeps one generator), as per-pixel concept masks:

* ``generator type`` concepts ``type 2 (seed)``, ``type 3``, ``type 4 (terminal)``;
* ``transformation`` concepts ``transformation 1`` .. ``transformation 8``.

The Broden reader (:class:`~xai_serve.data.broden.BrodenDataset`) reads the NetDissect categories
(object, part, scene, texture, color), so the types are stored in the ``object`` category and the
transformations in ``part``; :data:`CATEGORY_MEANING` names what each stands for. Images are grey
PNGs of the generated pixels clipped to 0..1 (the spline's slight over/undershoot is lost), masks are
at the image size (28 x 28). Dissecting a unit of a model trained on these digits against these masks
asks whether the unit found a part of the generative process whose answer is known.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from scipy.ndimage import rotate

from xai_serve.data import pattern_digits as pd
from xai_serve.data import pattern_growth as pg
from xai_serve.data.broden_writer import label_numbers, png_bytes, write_broden_tables, write_label_png

TYPES = {2: "type 2 (seed)", 3: "type 3", 4: "type 4 (terminal)"}
TRANSFORMATIONS = {k: f"transformation {k}" for k in range(1, pg.NBSG + 1)}
#: Broden category -> what its concepts are here.
CATEGORY_MEANING = {"object": "generator type", "part": "transformation (group element)"}
CONCEPTS = {"object": list(TYPES.values()), "part": list(TRANSFORMATIONS.values())}


def concept_boards(
    split: str, seed: int, size: int, class_probs: Sequence[float] | None = None
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The images of ``load_pattern_digits(split, seed=seed, size=size, class_probs=class_probs)`` with
    their grown boards' generator type and transformation per pixel: (images (N, 28, 28) float, types
    (N, 28, 28) int64 with 1 = background, transformations (N, 28, 28) int64, 0 on the background)."""
    rng = pd.split_rng(split, seed)
    if class_probs is None:
        classes = rng.integers(0, 10, size=size)
    else:
        p = np.asarray(class_probs, dtype=float)
        classes = rng.choice(10, size=size, p=p / p.sum())
    seeds = np.ones((size, pg.L, pg.L), dtype=np.int64)
    t = np.zeros(size, dtype=np.int64)
    deg = np.zeros(size)
    for j, c in enumerate(classes):  # the draws of pattern_digits.sample_batch, in its order
        seeds[j], t[j], deg[j] = pd.class_seeds(int(c), rng)
    boards = pg.develop_batch(t, seeds)
    images = np.stack([pd.render(boards[j], float(deg[j])) for j in range(size)])
    placed = np.stack([_rotate_labels(boards[j], float(deg[j])) for j in range(size)])
    types, transformations = pg.decode(np.maximum(placed, 1))
    background = types == 1
    return images, types, np.where(background, 0, transformations)


def _rotate_labels(board: np.ndarray, deg: float) -> np.ndarray:
    """The board's codes rotated like :func:`pattern_digits.render` rotates its image (a near-zero
    rotation's +5/-5 round trip leaves the labels in place); 0 where nothing was rotated in."""
    if abs(deg) < 2:
        return board
    return np.asarray(rotate(board, deg, reshape=False, order=0, mode="constant", cval=1), np.int64)


def write_pattern_concepts(
    root: str | os.PathLike[str],
    n_images: int = 300,
    *,
    split: str = "test",
    seed: int = 0,
    class_probs: Sequence[float] | None = None,
) -> dict[str, np.ndarray]:
    """Write the Broden-format folder of the ``n_images`` images of ``split`` (as
    :func:`concept_boards` draws them) under ``root``; return the dense truth masks, concept name ->
    (n_images, 28, 28) bool."""
    from xai_serve.atomic import atomic_write_bytes

    root = Path(root)
    images, types, transformations = concept_boards(split, seed, n_images, class_probs)
    number_of = label_numbers(CONCEPTS)
    type_labels = np.zeros_like(types)
    for value, name in TYPES.items():
        type_labels[types == value] = number_of[name]
    part_labels = np.zeros_like(transformations)
    for value, name in TRANSFORMATIONS.items():
        part_labels[transformations == value] = number_of[name]
    truth = {name: (type_labels == n) | (part_labels == n) for name, n in number_of.items()}
    rows = []
    for i in range(n_images):
        stem = f"{split}/{i:05d}"
        grey = (np.clip(images[i], 0.0, 1.0) * 255).round().astype(np.uint8)
        atomic_write_bytes(root / "images" / f"{stem}.png", png_bytes(grey))
        write_label_png(root / "images" / f"{stem}_type.png", type_labels[i])
        write_label_png(root / "images" / f"{stem}_transformation.png", part_labels[i])
        rows.append(
            {
                "image": f"{stem}.png",
                "split": split,
                "ih": pg.L,
                "iw": pg.L,
                "sh": pg.L,
                "sw": pg.L,
                "object": f"{stem}_type.png",
                "part": f"{stem}_transformation.png",
            }
        )
    write_broden_tables(root, CONCEPTS, rows, truth)
    return truth
