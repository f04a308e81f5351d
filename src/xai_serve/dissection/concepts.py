"""Concept masks of a probing set as sparse, packed bitsets (``ConceptStore``).

Dense masks of Broden's ADE20K part (22,210 images x 112x112 x ~1,000 concepts) would take ~35 GB
even as bits, so only the (image, concept) pairs that occur are stored:

* ``rows``      (R, words) uint64 -- distinct packed pixel masks; row 0 is all zeros, row 1 all ones
                (a scalar concept such as a scene or texture covers the whole image: row 1).
* ``entries``   sorted by image: ``entry_image``, ``entry_concept``, ``entry_row`` (int32), with
                ``image_ptr`` (N + 1) giving each image's slice (CSR layout).
* ``loc``       (C, N) int32: the row of concept c in image n (0 when absent) -- a formula's mask on
                any set of images is a gather plus bitwise operations.
* ``counts``    (C,) int64: |c|, the concept's total pixel count over the data set.

``join(images, bits, groups)`` is the one batched kernel: for packed masks ``bits[i]`` living on
image ``images[i]`` it returns, for every group g and concept c, ``sum popcount(bits[i] & c[images[i]])``
over the i of group g -- the intersections of unit masks (or formula masks) with every concept.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from xai_serve.atomic import atomic_write_bytes, atomic_write_text
from xai_serve.dissection import bitsets
from xai_serve.errors import DatasetNotFoundError, InvalidArgumentError

if TYPE_CHECKING:
    from xai_serve.data.broden import BrodenDataset

ZERO_ROW = 0
FULL_ROW = 1
_CHUNK_WORDS = 4_000_000  # words gathered per join chunk (32 MB)


@dataclass
class ConceptStore:
    names: list[str]
    categories: list[str]
    shape: tuple[int, int]
    rows: np.ndarray
    image_ptr: np.ndarray
    entry_concept: np.ndarray
    entry_row: np.ndarray
    loc: np.ndarray
    counts: np.ndarray

    @property
    def n_images(self) -> int:
        return int(self.image_ptr.shape[0] - 1)

    @property
    def n_concepts(self) -> int:
        return len(self.names)

    @property
    def n_words(self) -> int:
        return int(self.rows.shape[1])

    @property
    def n_pixels(self) -> int:
        return self.shape[0] * self.shape[1]

    # ------------------------------------------------------------------ building
    @classmethod
    def from_dataset(cls, dataset: BrodenDataset) -> ConceptStore:
        """Every concept mask of a Broden-format probing set, packed (several layers of a pixel
        category are OR-ed by :meth:`build`)."""
        items: list[tuple[int, int, np.ndarray | None]] = []
        for i in range(len(dataset)):
            for c, mask in dataset.concept_masks(i):
                items.append((i, c, None if mask is None else bitsets.pack(mask)))
        return cls.build(dataset.names, dataset.label_category, dataset.mask_size, len(dataset), items)

    @classmethod
    def build(
        cls,
        names: Sequence[str],
        categories: Sequence[str],
        shape: tuple[int, int],
        n_images: int,
        items: Sequence[tuple[int, int, np.ndarray | None]],
    ) -> ConceptStore:
        """From ``(image, concept, mask)`` items; ``mask`` is a packed row, or None for a whole-image
        (scalar) concept. Several items for the same (image, concept) are OR-ed."""
        nw = bitsets.words(shape[0] * shape[1])
        full = bitsets.full_row(shape[0] * shape[1])
        merged: dict[tuple[int, int], np.ndarray | None] = {}
        for image, concept, mask in items:
            if not (0 <= image < n_images and 0 <= concept < len(names)):
                raise InvalidArgumentError(f"concept item ({image}, {concept}) out of range")
            key = (int(image), int(concept))
            if key in merged:
                old = merged[key]
                if old is None or mask is None:
                    merged[key] = None
                else:
                    merged[key] = old | mask
            else:
                merged[key] = None if mask is None else np.asarray(mask, dtype=np.uint64).reshape(nw)
        keys = sorted(merged)
        rows = [np.zeros(nw, np.uint64), full]
        entry_image = np.empty(len(keys), np.int64)
        entry_concept = np.empty(len(keys), np.int32)
        entry_row = np.empty(len(keys), np.int32)
        kept = 0
        for image, concept in keys:
            m = merged[(image, concept)]
            if m is None or np.array_equal(m, full):
                row = FULL_ROW
            else:
                if not m.any():
                    continue
                row = len(rows)
                rows.append(m)
            entry_image[kept], entry_concept[kept], entry_row[kept] = image, concept, row
            kept += 1
        return cls.from_entries(
            names,
            categories,
            shape,
            np.stack(rows),
            entry_image[:kept],
            entry_concept[:kept],
            entry_row[:kept],
            n_images=n_images,
        )

    @classmethod
    def from_entries(
        cls,
        names: Sequence[str],
        categories: Sequence[str],
        shape: tuple[int, int],
        rows: np.ndarray,
        entry_image: np.ndarray,
        entry_concept: np.ndarray,
        entry_row: np.ndarray,
        n_images: int | None = None,
    ) -> ConceptStore:
        """From entry arrays (any order; sorted here by image then concept)."""
        order = np.lexsort((entry_concept, entry_image))
        entry_image = np.asarray(entry_image, np.int64)[order]
        entry_concept = np.asarray(entry_concept, np.int32)[order]
        entry_row = np.asarray(entry_row, np.int32)[order]
        n = int(n_images if n_images is not None else (entry_image.max() + 1 if entry_image.size else 0))
        image_ptr = np.zeros(n + 1, np.int64)
        np.cumsum(np.bincount(entry_image, minlength=n), out=image_ptr[1:])
        loc = np.zeros((len(names), n), np.int32)
        loc[entry_concept, entry_image] = entry_row
        row_counts = bitsets.popcount_rows(rows)
        counts = np.bincount(entry_concept, weights=row_counts[entry_row], minlength=len(names))
        return cls(
            names=list(names),
            categories=list(categories),
            shape=(int(shape[0]), int(shape[1])),
            rows=np.ascontiguousarray(rows, np.uint64),
            image_ptr=image_ptr,
            entry_concept=entry_concept,
            entry_row=entry_row,
            loc=loc,
            counts=np.rint(counts).astype(np.int64),
        )

    @classmethod
    def from_dense(cls, concepts: Mapping[str, np.ndarray]) -> ConceptStore:
        """From a mapping name -> boolean (N, H, W) array (what ``best_formula`` takes)."""
        if not concepts:
            raise InvalidArgumentError("no concepts given")
        names = list(concepts)
        shapes = {np.shape(m) for m in concepts.values()}
        if len(shapes) != 1 or len(next(iter(shapes))) != 3:
            raise InvalidArgumentError(f"concept masks must all be (N, H, W) arrays; got shapes {shapes}")
        n, h, w = next(iter(shapes))
        items: list[tuple[int, int, np.ndarray | None]] = []
        for c, name in enumerate(names):
            packed = bitsets.pack(np.asarray(concepts[name], dtype=bool))
            for i in np.flatnonzero(packed.any(axis=1)):
                items.append((int(i), c, packed[i]))
        return cls.build(names, ["pixel"] * len(names), (h, w), n, items)

    # ------------------------------------------------------------------ queries
    def images_of(self, concept: int) -> np.ndarray:
        """Sorted images where ``concept`` occurs."""
        return np.flatnonzero(self.loc[concept] != ZERO_ROW)

    def bits(self, concept: int, images: np.ndarray) -> np.ndarray:
        """Packed masks of ``concept`` on ``images`` -> (len(images), words)."""
        return self.rows[self.loc[concept, images]]

    def join(
        self,
        images: np.ndarray,
        bits: np.ndarray,
        groups: np.ndarray | None = None,
        n_groups: int = 1,
        *,
        with_present: bool = True,
    ) -> tuple[np.ndarray, np.ndarray]:
        """Intersection counts with every concept, summed per group.

        ``images`` (M,) image index of each packed mask ``bits`` (M, words); ``groups`` (M,) group id
        (default all 0). Returns ``(inter, present)``: ``inter`` (n_groups, C) int64 pixel counts of
        the intersections, ``present`` (n_groups, C) bool -- the concept occurs in at least one of the
        group's images (image-level co-occurrence; all False unless ``with_present``). Whole-image
        entries (scene, texture) are counted from the masks' own popcounts, without a gather."""
        images = np.asarray(images, np.int64)
        groups = np.zeros(images.shape[0], np.int64) if groups is None else np.asarray(groups, np.int64)
        c = self.n_concepts
        inter = np.zeros(n_groups * c, np.float64)
        present = np.zeros(n_groups * c, np.int64)
        if images.size == 0:
            return inter.reshape(n_groups, c).astype(np.int64), present.reshape(n_groups, c) > 0
        starts = self.image_ptr[images]
        lens = self.image_ptr[images + 1] - starts
        ends = np.cumsum(lens)
        per_chunk = max(1, _CHUNK_WORDS // max(1, self.n_words))
        own = bitsets.popcount_rows(bits)  # |mask| per mask: the intersection with a whole-image entry
        buf_a = np.empty((per_chunk, self.n_words), np.uint64)
        buf_b = np.empty((per_chunk, self.n_words), np.uint64)
        buf_c = np.empty((per_chunk, self.n_words), np.uint8)
        lo = 0
        m = images.shape[0]
        while lo < m:
            # masks lo..hi whose entries fit in one chunk
            base = ends[lo - 1] if lo else 0
            hi = int(np.searchsorted(ends, base + per_chunk, side="right"))
            hi = min(max(hi, lo + 1), m)
            ln = lens[lo:hi]
            total = int(ln.sum())
            if total:
                pos = np.repeat(np.arange(lo, hi), ln)
                offs = np.arange(total) - np.repeat(np.cumsum(ln) - ln, ln)
                ent = starts[lo:hi].repeat(ln) + offs
                rows = self.entry_row[ent]
                pc = own[pos].astype(np.float64)
                pixel = np.flatnonzero(rows != FULL_ROW)
                k = pixel.size
                if k > buf_a.shape[0]:  # a single image with more entries than a chunk
                    buf_a = np.empty((k, self.n_words), np.uint64)
                    buf_b = np.empty((k, self.n_words), np.uint64)
                    buf_c = np.empty((k, self.n_words), np.uint8)
                if k:
                    a, b, cnt = buf_a[:k], buf_b[:k], buf_c[:k]
                    np.take(bits, pos[pixel], axis=0, out=a, mode="clip")
                    np.take(self.rows, rows[pixel], axis=0, out=b, mode="clip")
                    np.bitwise_and(a, b, out=a)
                    np.bitwise_count(a, out=cnt)
                    pc[pixel] = cnt.sum(axis=1, dtype=np.int64)
                key = groups[pos] * c + self.entry_concept[ent]
                inter += np.bincount(key, weights=pc, minlength=n_groups * c)
                if with_present:
                    present += np.bincount(key, minlength=n_groups * c)
            lo = hi
        return np.rint(inter).astype(np.int64).reshape(n_groups, c), present.reshape(n_groups, c) > 0

    # ------------------------------------------------------------------ storage
    _ARRAYS = ("rows", "image_ptr", "entry_concept", "entry_row")

    def save(self, folder: str | Path) -> None:
        """Write ``concepts.json`` + one ``.npy`` per array into ``folder`` (each file atomic)."""
        folder = Path(folder)
        import io

        for name in self._ARRAYS:
            buf = io.BytesIO()
            np.save(buf, getattr(self, name))
            atomic_write_bytes(folder / f"{name}.npy", buf.getvalue())
        meta = {"names": self.names, "categories": self.categories, "shape": list(self.shape)}
        atomic_write_text(folder / "concepts.json", json.dumps(meta, indent=1) + "\n")

    @classmethod
    def load(cls, folder: str | Path) -> ConceptStore:
        folder = Path(folder)
        meta_file = folder / "concepts.json"
        if not meta_file.is_file():
            raise DatasetNotFoundError(f"no concept store in {folder} (expected concepts.json + .npy files)")
        meta = json.loads(meta_file.read_text())
        arrays = {n: np.load(folder / f"{n}.npy", mmap_mode="r") for n in cls._ARRAYS}
        ptr = np.asarray(arrays["image_ptr"])
        n = ptr.shape[0] - 1
        counts_per_image = np.diff(ptr)
        entry_image = np.repeat(np.arange(n), counts_per_image)
        return cls.from_entries(
            meta["names"],
            meta["categories"],
            tuple(meta["shape"]),
            arrays["rows"],
            entry_image,
            np.asarray(arrays["entry_concept"]),
            np.asarray(arrays["entry_row"]),
            n_images=n,
        )
