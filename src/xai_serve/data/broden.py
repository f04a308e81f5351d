"""Broden-format probing sets read from a local folder (docs/methods.md#broden); nothing is
downloaded.

Layout::

    <root>/index.csv      image,split,ih,iw,sh,sw,<one column per category>   (or --index NAME)
    <root>/label.csv      number,name,category,frequency,coverage,syns       (category: "cat(count);...")
    <root>/category.csv   name,first,last,count,frequency
    <root>/images/<image>              the images (any size; resized by the model's transform)
    <root>/images/<mask>.png           segmentations, label = R + 256 * G, sh x sw pixels

A pixel category's cell holds ``;``-separated PNG paths (several layers are OR-ed); a scalar
category's cell holds ``;``-separated label numbers (a whole-image mask). Label 0 is ignored. By
default the categories of compexp are used (object, part, scene, texture, color; material excluded).
"""

from __future__ import annotations

import csv
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from xai_serve.errors import DatasetNotFoundError

DEFAULT_CATEGORIES = ("object", "part", "scene", "texture", "color")
REQUIRED = ("index.csv", "label.csv", "category.csv", "images/")
_LAYOUT = (
    "expected a Broden-format folder with index.csv (image,split,ih,iw,sh,sw,<categories>), "
    "label.csv (number,name,category,...), category.csv (name,first,last,count,frequency) and "
    "images/ holding the images and R+256*G segmentation PNGs"
)
_INDEX_FIELDS = ("image", "split", "ih", "iw", "sh", "sw")


def decode_segmentation(path: str | os.PathLike[str]) -> np.ndarray:
    """Label image of a Broden segmentation PNG: ``R + 256 * G`` (int32, H x W)."""
    from PIL import Image

    with Image.open(path) as im:
        rgb = np.asarray(im.convert("RGB"), dtype=np.int32)
    return rgb[..., 0] + 256 * rgb[..., 1]


def encode_segmentation(labels: np.ndarray) -> np.ndarray:
    """Inverse of :func:`decode_segmentation`: (H, W) labels -> (H, W, 3) uint8 RGB."""
    labels = np.asarray(labels, dtype=np.int64)
    out = np.zeros((*labels.shape, 3), np.uint8)
    out[..., 0] = labels % 256
    out[..., 1] = labels // 256
    return out


@dataclass
class BrodenRow:
    image: str
    split: str
    mask_size: tuple[int, int]
    pixel: dict[str, list[str]]  # category -> PNG paths (relative to images/)
    scalar: dict[str, list[int]]  # category -> label numbers


class BrodenDataset:
    """A Broden-format folder. ``labels[i]`` / ``names[i]`` / ``label_category[i]`` describe the
    concepts (every label of label.csv but 0, in file order, restricted to ``categories``)."""

    def __init__(
        self,
        root: str | os.PathLike[str],
        *,
        index: str = "index.csv",
        categories: tuple[str, ...] | list[str] | None = DEFAULT_CATEGORIES,
        split: str | None = None,
        limit: int | None = None,
    ) -> None:
        self.root = Path(root)
        missing = [
            name for name in (index, "label.csv", "category.csv") if not (self.root / name).is_file()
        ] + ([] if (self.root / "images").is_dir() else ["images/"])
        if missing:
            raise DatasetNotFoundError(f"Broden folder {self.root} lacks {', '.join(missing)} ({_LAYOUT})")
        try:
            self._read(index, categories, split, limit)
        except (KeyError, ValueError, csv.Error) as exc:
            raise DatasetNotFoundError(f"malformed Broden folder {self.root}: {exc} ({_LAYOUT})") from exc

    def _read(self, index: str, categories: Any, split: str | None, limit: int | None) -> None:
        with open(self.root / "category.csv", newline="") as f:
            all_categories = [r["name"] for r in csv.DictReader(f)]
        wanted = list(
            all_categories if categories is None else [c for c in categories if c in all_categories]
        )
        if not wanted:
            raise ValueError(f"none of the categories {categories} is in category.csv ({all_categories})")
        self.categories = wanted
        self.labels: list[int] = []
        self.names: list[str] = []
        self.label_category: list[str] = []
        with open(self.root / "label.csv", newline="") as f:
            for r in csv.DictReader(f):
                number = int(r["number"])
                if number == 0:
                    continue
                cats = [c.split("(")[0] for c in r["category"].split(";") if c]
                cat = next((c for c in cats if c in wanted), None)
                if cat is None:
                    continue
                self.labels.append(number)
                self.names.append(r["name"])
                self.label_category.append(cat)
        self.concept_of = {n: i for i, n in enumerate(self.labels)}
        rows: list[BrodenRow] = []
        with open(self.root / index, newline="") as f:
            reader = csv.DictReader(f)
            fields = reader.fieldnames or []
            lacking = [k for k in _INDEX_FIELDS if k not in fields]
            if lacking:
                raise ValueError(f"{index} lacks the columns {lacking}")
            for r in reader:
                if split is not None and r["split"] != split:
                    continue
                pixel: dict[str, list[str]] = {}
                scalar: dict[str, list[int]] = {}
                for cat in wanted:
                    cell = (r.get(cat) or "").strip()
                    if not cell:
                        continue
                    parts = [p for p in cell.split(";") if p]
                    if all(p.isdigit() for p in parts):
                        scalar[cat] = [int(p) for p in parts]
                    else:
                        pixel[cat] = parts
                rows.append(BrodenRow(r["image"], r["split"], (int(r["sh"]), int(r["sw"])), pixel, scalar))
                if limit is not None and len(rows) >= limit:
                    break
        if not rows:
            raise ValueError(f"{index} has no image rows" + (f" in split {split!r}" if split else ""))
        sizes = {r.mask_size for r in rows}
        if len(sizes) != 1:
            raise ValueError(f"segmentation sizes differ between images: {sorted(sizes)}")
        self.rows = rows
        self.mask_size: tuple[int, int] = sizes.pop()

    def __len__(self) -> int:
        return len(self.rows)

    def image_path(self, i: int) -> Path:
        return self.root / "images" / self.rows[i].image

    def image(self, i: int) -> Any:
        """The i-th image as an RGB PIL image."""
        from PIL import Image

        path = self.image_path(i)
        if not path.is_file():
            raise DatasetNotFoundError(f"Broden image {path} listed in the index does not exist")
        with Image.open(path) as im:
            return im.convert("RGB")

    def concept_masks(self, i: int) -> list[tuple[int, np.ndarray | None]]:
        """(concept index, boolean mask or None for a whole-image label) pairs of image i; several
        layers of a pixel category are OR-ed by the caller (the same concept may repeat)."""
        row = self.rows[i]
        out: list[tuple[int, np.ndarray | None]] = []
        for paths in row.pixel.values():
            for rel in paths:
                path = self.root / "images" / rel
                if not path.is_file():
                    raise DatasetNotFoundError(
                        f"Broden segmentation {path} listed in the index does not exist"
                    )
                seg = decode_segmentation(path)
                if seg.shape != self.mask_size:
                    raise DatasetNotFoundError(
                        f"segmentation {path} is {seg.shape}, the index says {self.mask_size}"
                    )
                for number in np.unique(seg):
                    c = self.concept_of.get(int(number))
                    if c is not None:
                        out.append((c, seg == number))
        for numbers in row.scalar.values():
            for number in numbers:
                c = self.concept_of.get(number)
                if c is not None:
                    out.append((c, None))
        return out
