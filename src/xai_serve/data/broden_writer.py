"""Writing a Broden-format folder's tables (the layout :mod:`xai_serve.data.broden` reads): ``index.csv``
(one row per image), ``label.csv`` (every concept with its category, image frequency and pixel
coverage) and ``category.csv`` (each category's label-number range). Concept numbers run from 1 in
the order of ``categories``' names; label 0 is the background."""

from __future__ import annotations

import csv
import io
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np

from xai_serve.atomic import atomic_write_bytes, atomic_write_text
from xai_serve.data.broden import encode_segmentation

INDEX_FIELDS = ("image", "split", "ih", "iw", "sh", "sw")


def png_bytes(array: np.ndarray) -> bytes:
    """``array`` (uint8 grey (H, W) or RGB (H, W, 3)) as PNG file bytes."""
    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(array).save(buf, format="PNG")
    return buf.getvalue()


def write_label_png(path: Path, labels: np.ndarray) -> None:
    """A label image (``labels[h, w]``: 0 for none, else a label number) in Broden's RGB encoding."""
    atomic_write_bytes(path, png_bytes(encode_segmentation(labels)))


def label_numbers(categories: Mapping[str, Sequence[str]]) -> dict[str, int]:
    """Concept name -> its label number (1, 2, ... in category order)."""
    names = [name for names in categories.values() for name in names]
    return {name: n for n, name in enumerate(names, 1)}


def write_broden_tables(
    root: Path,
    categories: Mapping[str, Sequence[str]],
    rows: Sequence[Mapping[str, object]],
    truth: Mapping[str, np.ndarray],
    empty: Sequence[str] = (),
) -> None:
    """Write ``index.csv`` from ``rows`` (each holds :data:`INDEX_FIELDS` and one cell per category it
    labels), ``label.csv`` and ``category.csv``; ``truth`` (concept -> (N, H, W) bool) gives each
    concept's frequency (images where it occurs) and coverage (percent of pixels). ``empty``: categories
    the folder declares without any concept (an empty column and a zero-length label range)."""
    index_fields = [*INDEX_FIELDS, *categories, *empty]
    _write_csv(root / "index.csv", index_fields, [{f: row.get(f, "") for f in index_fields} for row in rows])
    labels = [{"number": 0, "name": "-", "category": "", "frequency": 0, "coverage": 0, "syns": ""}]
    for category, names in categories.items():
        for name in names:
            mask = truth[name]
            count = int(mask.reshape(mask.shape[0], -1).any(axis=1).sum())
            labels.append(
                {
                    "number": label_numbers(categories)[name],
                    "name": name,
                    "category": f"{category}({count})",
                    "frequency": count,
                    "coverage": round(float(mask.mean()) * 100, 3),
                    "syns": "",
                }
            )
    _write_csv(root / "label.csv", ["number", "name", "category", "frequency", "coverage", "syns"], labels)
    cat_rows, first = [], 1
    for category, names in categories.items():
        cat_rows.append(
            {
                "name": category,
                "first": first,
                "last": first + len(names) - 1,
                "count": len(names),
                "frequency": len(rows),
            }
        )
        first += len(names)
    cat_rows += [{"name": c, "first": 0, "last": 0, "count": 0, "frequency": 0} for c in empty]
    _write_csv(root / "category.csv", ["name", "first", "last", "count", "frequency"], cat_rows)


def _write_csv(path: Path, fields: Sequence[str], rows: Sequence[Mapping[str, object]]) -> None:
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=list(fields), lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    atomic_write_text(path, buf.getvalue())
