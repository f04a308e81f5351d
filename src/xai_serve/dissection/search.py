"""Dataset-level IoU and the beam search over concept formulas (docs/methods.md#compexp-algorithm, steps 5-6)
on packed bitsets.

IoU(M, C) = |M & C| / (|M| + |C| - |M & C| + 1e-10), counts summed over every image and pixel.
For a formula f already in the beam and every concept l, two intersection counts give all three
extensions without building a mask per candidate:

    a_l = |f & l|      over the data set (cached per formula: it does not depend on the unit)
    b_l = |M & f & l|  over the unit's images

    f OR l      inter = |M&f| + |M&l| - b_l    size = |f| + |l| - a_l
    f AND l     inter = b_l                    size = a_l
    f AND NOT l inter = |M&f| - b_l            size = |f| - a_l     (no complement mask is formed)

Beam: the top ``beam`` single concepts with IoU > 0 (none: ``NONE``, IoU 0); each step extends every
beam formula by every candidate concept (those occurring in an image where the unit fires) with the
three operators and keeps the top ``beam`` of old and new formulas, ranked by
``IoU * penalty ** (length - 1)``; ties keep the earlier formula (old beam first, then generation
order: beam order, concept order, OR / AND / AND NOT), as ``Counter.most_common`` does in the
compositional explanations code (Mu & Andreas; docs/methods.md#compexp-algorithm).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

import numpy as np

from xai_serve.dissection import formula as fm
from xai_serve.dissection.concepts import ConceptStore
from xai_serve.dissection.units import UnitMask
from xai_serve.errors import InvalidArgumentError

EPS = 1e-10


def iou(inter: np.ndarray | float, size_a: np.ndarray | float, size_b: np.ndarray | float) -> np.ndarray:
    return np.asarray(inter, np.float64) / (np.asarray(size_a, np.float64) + size_b - inter + EPS)


@dataclass
class Candidate:
    formula: fm.Formula
    score: float
    iou: float
    inter: int  # |M & f|
    size: int  # |f|


@dataclass
class UnitResult:
    unit: int
    formula: str
    iou: float
    length: int
    primitives: int
    single: str
    single_iou: float
    history: list[str] = field(default_factory=list)


class Searcher:
    """Beam search for many units over one :class:`ConceptStore` (caches formula/concept counts)."""

    def __init__(
        self, store: ConceptStore, *, max_length: int = 3, beam: int = 5, penalty: float = 1.0
    ) -> None:
        if max_length < 1 or beam < 1:
            raise InvalidArgumentError(f"max_length and beam must be >= 1 (got {max_length}, {beam})")
        if not 0.0 < penalty <= 1.0:
            raise InvalidArgumentError(f"complexity penalty must be in (0, 1], got {penalty}")
        self.store = store
        self.max_length = max_length
        self.beam = beam
        self.penalty = penalty
        self._cache: dict[fm.Formula, np.ndarray] = {}
        self._supports: dict[fm.Formula, np.ndarray] = {}

    # ------------------------------------------------------------------ formula masks
    def _support(self, f: fm.Formula) -> np.ndarray:
        """Sorted images where formula ``f`` can be non-empty (cached)."""
        hit = self._supports.get(f)
        if hit is not None:
            return hit
        if f[0] == "leaf":
            hit = self.store.images_of(f[1])
        else:
            op, left, right = f
            if op == "OR":
                hit = np.union1d(self._support(left), self._support(right))
            elif op == "AND":
                hit = np.intersect1d(self._support(left), self._support(right), assume_unique=True)
            else:
                hit = self._support(left)
        if len(self._supports) > 2048:
            self._supports.clear()
        self._supports[f] = hit
        return hit

    def formula_bits(self, f: fm.Formula, images: np.ndarray) -> np.ndarray:
        """Packed mask of formula ``f`` on ``images``."""
        if f[0] == "leaf":
            return self.store.bits(f[1], images)
        op, left, right = f
        a = self.formula_bits(left, images)
        b = self.formula_bits(right, images)
        if op == "OR":
            return a | b
        if op == "AND":
            return a & b
        return a & ~b

    @staticmethod
    def _extend(op: str, with_g: np.ndarray, with_leaf: np.ndarray, triple: np.ndarray) -> np.ndarray:
        """Counts for ``g op B`` from the counts with g, with B and with g AND B (inclusion-exclusion)."""
        if op == "OR":
            return with_g + with_leaf - triple
        if op == "AND":
            return triple
        return with_g - triple

    def formula_concept_counts(self, f: fm.Formula) -> np.ndarray:
        """``|f & l|`` for every concept l over the data set (cached; it does not depend on the unit).

        A leaf joins its own images; ``g op B`` needs only ``|g & B & l|``, joined over the images
        holding both g and B, and the cached counts of g and B."""
        hit = self._cache.get(f)
        if hit is not None:
            return hit
        if f[0] != "leaf" and f[2][0] == "leaf":
            op, g, right = f
            b = int(right[1])
            images = np.intersect1d(self._support(g), self.store.images_of(b), assume_unique=True)
            triple = self.store.join(
                images, self.formula_bits(g, images) & self.store.bits(b, images), with_present=False
            )[0][0]
            hit = self._extend(op, self.formula_concept_counts(g), self.formula_concept_counts(right), triple)
        else:
            images = self._support(f)
            hit = self.store.join(images, self.formula_bits(f, images), with_present=False)[0][0]
        if len(self._cache) > 8192:
            self._cache.clear()
        self._cache[f] = hit
        return hit

    def unit_formula_counts(
        self, f: fm.Formula, mask: UnitMask, local: dict[fm.Formula, np.ndarray]
    ) -> np.ndarray:
        """``|M & f & l|`` for every concept l (``local``: the unit's cache), joined only over the
        unit's images that hold every concept the new term needs."""
        hit = local.get(f)
        if hit is not None:
            return hit
        if f[0] == "leaf":
            images = np.intersect1d(mask.images, self.store.images_of(f[1]), assume_unique=True)
            bits = mask.bits[np.searchsorted(mask.images, images)] & self.store.bits(f[1], images)
            hit = self.store.join(images, bits, with_present=False)[0][0]
        elif f[2][0] == "leaf":
            op, g, right = f
            b = int(right[1])
            images = np.intersect1d(mask.images, self._support(g), assume_unique=True)
            images = np.intersect1d(images, self.store.images_of(b), assume_unique=True)
            bits = mask.bits[np.searchsorted(mask.images, images)]
            bits &= self.formula_bits(g, images) & self.store.bits(b, images)
            triple = self.store.join(images, bits, with_present=False)[0][0]
            hit = self._extend(
                op,
                self.unit_formula_counts(g, mask, local),
                self.unit_formula_counts(right, mask, local),
                triple,
            )
        else:
            hit = self.store.join(
                mask.images, mask.bits & self.formula_bits(f, mask.images), with_present=False
            )[0][0]
        local[f] = hit
        return hit

    # ------------------------------------------------------------------ search
    def single_counts(
        self, masks: Mapping[int, UnitMask]
    ) -> tuple[dict[int, np.ndarray], dict[int, np.ndarray]]:
        """``|M_u & c|`` and image co-occurrence for every unit and concept, as one batched join."""
        order = list(masks)
        if not order:
            return {}, {}
        images = np.concatenate([masks[u].images for u in order])
        bits = np.concatenate([masks[u].bits for u in order])
        groups = np.repeat(np.arange(len(order)), [masks[u].images.shape[0] for u in order])
        inter, present = self.store.join(images, bits, groups, len(order))
        return {u: inter[i] for i, u in enumerate(order)}, {u: present[i] for i, u in enumerate(order)}

    def search(self, unit: int, mask: UnitMask, inter1: np.ndarray, present: np.ndarray) -> UnitResult:
        store = self.store
        names = store.names
        counts = store.counts
        mu = mask.total
        iou1 = iou(inter1, counts, mu)
        history: list[str] = []
        positive = np.flatnonzero(iou1 > 0)
        if positive.size == 0:
            history.append(f"unit {unit}: no concept overlaps the unit mask (|M|={mu})")
            return UnitResult(unit, fm.NONE, 0.0, 0, 0, fm.NONE, 0.0, history)
        ranked = positive[np.argsort(-iou1[positive], kind="stable")][: self.beam]
        beam = [
            Candidate(fm.leaf(c), float(iou1[c]), float(iou1[c]), int(inter1[c]), int(counts[c]))
            for c in ranked
        ]
        single = beam[0]
        history.append(self._log(unit, 1, beam))
        cands = np.flatnonzero(present)
        local: dict[fm.Formula, np.ndarray] = {}
        for step in range(2, self.max_length + 1):
            pool: list[tuple[float, int, Candidate]] = [(-b.score, i, b) for i, b in enumerate(beam)]
            seen = {b.formula for b in beam}
            seq = len(beam)
            for parent in beam:
                a = self.formula_concept_counts(parent.formula)[cands]
                b = self.unit_formula_counts(parent.formula, mask, local)[cands]
                i1 = inter1[cands]
                cnt = counts[cands]
                inters = np.stack([parent.inter + i1 - b, b, parent.inter - b])  # OR, AND, AND NOT
                sizes = np.stack([parent.size + cnt - a, a, parent.size - a])
                ious = iou(inters, sizes, mu)
                lens = np.array(
                    [
                        fm.length(parent.formula) + 1,
                        fm.length(parent.formula) + 1,
                        fm.length(parent.formula) + 2,
                    ]
                )
                scores = ious * (self.penalty ** (lens - 1))[:, None]
                # generation order: concept-major, then operator
                flat_scores = scores.T.reshape(-1)
                k = min(self.beam, flat_scores.size)
                if k == 0:
                    continue
                kth = np.partition(-flat_scores, k - 1)[k - 1]
                for j in np.flatnonzero(-flat_scores <= kth):
                    li, oi = divmod(int(j), 3)
                    g = fm.combine(fm.OPS[oi], parent.formula, int(cands[li]))
                    if g in seen:
                        continue
                    seen.add(g)
                    pool.append(
                        (
                            -float(flat_scores[j]),
                            seq + int(j),
                            Candidate(
                                g,
                                float(flat_scores[j]),
                                float(ious[oi, li]),
                                int(inters[oi, li]),
                                int(sizes[oi, li]),
                            ),
                        )
                    )
                seq += flat_scores.size
            pool.sort(key=lambda t: (t[0], t[1]))
            beam = [t[2] for t in pool[: self.beam]]
            history.append(self._log(unit, step, beam))
        best = beam[0]
        return UnitResult(
            unit=unit,
            formula=fm.to_string(best.formula, names),
            iou=best.iou,
            length=fm.length(best.formula),
            primitives=fm.primitives(best.formula),
            single=names[single.formula[1]],
            single_iou=single.iou,
            history=history,
        )

    def _log(self, unit: int, step: int, beam: list[Candidate]) -> str:
        items = "; ".join(f"{fm.to_string(c.formula, self.store.names)} = {c.iou:.6f}" for c in beam)
        return f"unit {unit} length {step}: {items}"

    def run(self, masks: Mapping[int, UnitMask]) -> list[UnitResult]:
        """Search every unit of ``masks`` (length-1 IoUs computed for all of them at once)."""
        inter, present = self.single_counts(masks)
        return [self.search(u, masks[u], inter[u], present[u]) for u in masks]


def best_formula(
    unit: np.ndarray,
    concepts: Mapping[str, np.ndarray],
    max_length: int = 3,
    beam: int = 5,
    penalty: float = 1.0,
) -> tuple[str, float]:
    """The formula over ``concepts`` (name -> boolean (N, H, W)) that best matches the boolean unit
    mask ``unit`` (N, H, W) by dataset-level IoU, found by beam search; returns ``(formula, iou)``,
    e.g. ``("(A OR B) AND NOT C", 1.0)``, or ``("NONE", 0.0)`` when no concept overlaps the unit."""
    unit = np.asarray(unit)
    if unit.ndim != 3:
        raise InvalidArgumentError(f"unit mask must be (N, H, W), got shape {unit.shape}")
    store = ConceptStore.from_dense(concepts)
    if (store.n_images, *store.shape) != unit.shape:
        raise InvalidArgumentError(
            f"unit mask shape {unit.shape} differs from the concept masks' {(store.n_images, *store.shape)}"
        )
    result = Searcher(store, max_length=max_length, beam=beam, penalty=penalty).run(
        {0: UnitMask.from_dense(unit)}
    )[0]
    return result.formula, result.iou
