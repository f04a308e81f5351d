"""IoU and beam search on packed bitsets vs hand-computed values and the dense reference."""

from __future__ import annotations

import numpy as np
import pytest

from xai_serve.dissection import ConceptStore, Searcher, UnitMask, best_formula
from xai_serve.dissection import formula as fm
from xai_serve.dissection.dense import dense_best_formula, dense_iou
from xai_serve.errors import InvalidArgumentError

EPS = 1e-10


def _rect(n: int, h: int, w: int, boxes: dict[int, tuple[int, int, int, int]]) -> np.ndarray:
    m = np.zeros((n, h, w), bool)
    for i, (y0, y1, x0, x1) in boxes.items():
        m[i, y0:y1, x0:x1] = True
    return m


@pytest.fixture
def planted() -> tuple[np.ndarray, dict[str, np.ndarray]]:
    n, h, w = 6, 8, 8
    concepts = {
        "A": _rect(n, h, w, {0: (0, 6, 0, 6), 1: (0, 8, 0, 4), 2: (2, 8, 2, 8), 3: (0, 5, 0, 5)}),
        "B": _rect(n, h, w, {1: (0, 3, 4, 8), 4: (0, 4, 0, 4)}),
        "C": _rect(n, h, w, {0: (0, 2, 0, 2), 2: (4, 8, 4, 8), 3: (0, 5, 0, 2), 5: (0, 8, 0, 8)}),
        "D": _rect(n, h, w, {0: (4, 8, 4, 8), 5: (0, 4, 0, 4)}),
        "E": _rect(n, h, w, {i: (0, 8, 0, 8) for i in range(0, 6, 2)}),
    }
    unit = (concepts["A"] | concepts["B"]) & ~concepts["C"]
    return unit, concepts


def test_iou_by_hand() -> None:
    a = np.zeros((2, 2, 2), bool)
    b = np.zeros((2, 2, 2), bool)
    a[0, 0, :] = True  # 2 pixels
    a[1, 1, 1] = True  # 3 in all
    b[0, 0, 0] = True
    b[1] = True  # 1 + 4 = 5 pixels; intersection 1 + 1 = 2
    store = ConceptStore.from_dense({"b": b})
    mask = UnitMask.from_dense(a)
    searcher = Searcher(store, max_length=1)
    inter, present = searcher.single_counts({0: mask})
    assert inter[0].tolist() == [2] and present[0].tolist() == [True]
    assert searcher.run({0: mask})[0].iou == pytest.approx(2 / (3 + 5 - 2 + EPS), abs=0)
    assert best_formula(a, {"b": b}) == ("b", pytest.approx(2 / 6))


def test_planted_formula_recovered(planted) -> None:
    unit, concepts = planted
    formula, iou = best_formula(unit, concepts, max_length=3, beam=5)
    assert formula == "(A OR B) AND NOT C"
    assert iou == pytest.approx(1.0, abs=1e-9)
    parsed = fm.parse(formula, list(concepts))
    assert parsed == ("AND NOT", ("OR", ("leaf", 0), ("leaf", 1)), ("leaf", 2))


def test_length_one_is_best_single_concept(planted) -> None:
    unit, concepts = planted
    singles = {k: dense_iou(unit, v) for k, v in concepts.items()}
    formula, iou = best_formula(unit, concepts, max_length=1)
    assert formula == max(singles, key=singles.get)
    assert iou == pytest.approx(singles[formula], abs=1e-12)


def test_shorter_formula_stays_when_longer_does_not_help(planted) -> None:
    _, concepts = planted
    formula, iou = best_formula(concepts["A"], concepts, max_length=3)
    assert (formula, iou) == ("A", pytest.approx(1.0, abs=1e-9))  # "A OR A" ties; the shorter, older one wins
    searcher = Searcher(ConceptStore.from_dense(concepts), max_length=3)
    result = searcher.run({7: UnitMask.from_dense(concepts["A"])})[0]
    assert result.history[-1].startswith("unit 7 length 3: A = 1.000000")


def test_no_overlap_gives_none(planted) -> None:
    _, concepts = planted
    unit = np.zeros_like(concepts["A"])
    assert best_formula(unit, concepts) == ("NONE", 0.0)


def test_bitset_counts_equal_dense_on_random_masks() -> None:
    rng = np.random.default_rng(0)
    n, h, w = 9, 13, 11  # 143 pixels: padding bits in the last word
    concepts = {f"c{i}": rng.random((n, h, w)) < rng.uniform(0.02, 0.4) for i in range(7)}
    for i in range(0, 7, 3):
        concepts[f"c{i}"][rng.random(n) < 0.5] = False  # concepts absent from some images
    store = ConceptStore.from_dense(concepts)
    unit = rng.random((n, h, w)) < 0.2
    searcher = Searcher(store, max_length=3)
    inter, _ = searcher.single_counts({0: UnitMask.from_dense(unit)})
    for c, name in enumerate(concepts):
        assert inter[0][c] == np.count_nonzero(unit & concepts[name])
    # AND NOT by counts equals the explicit complement; |f & l| per formula equals dense
    f = ("OR", fm.leaf(1), fm.leaf(4))
    dense_f = concepts["c1"] | concepts["c4"]
    counts = searcher.formula_concept_counts(f)
    for c, name in enumerate(concepts):
        assert counts[c] == np.count_nonzero(dense_f & concepts[name])
        and_not = np.count_nonzero(dense_f & ~concepts[name])
        assert dense_f.sum() - counts[c] == and_not


@pytest.mark.parametrize("seed", range(6))
def test_best_formula_equals_dense_reference(seed: int) -> None:
    rng = np.random.default_rng(seed)
    n, h, w = 10, 12, 12

    def blob() -> np.ndarray:
        m = np.zeros((n, h, w), bool)
        for i in range(n):
            if rng.random() < 0.6:
                y, x = rng.integers(0, 9, 2)
                dy, dx = rng.integers(2, 7, 2)
                m[i, y : y + dy, x : x + dx] = True
        return m

    concepts = {name: blob() for name in "ABCDEFGH"}
    unit = blob() | (concepts["C"] & blob())
    for length in (1, 2, 3):
        ours = best_formula(unit, concepts, max_length=length, beam=4)
        ref = dense_best_formula(unit, concepts, max_length=length, beam=4)
        assert ours[0] == ref[0]
        assert ours[1] == pytest.approx(ref[1], abs=1e-12)


def test_penalty_prefers_shorter(planted) -> None:
    unit, concepts = planted
    plain = best_formula(unit, concepts, penalty=1.0)
    strong = best_formula(unit, concepts, penalty=0.5)
    assert fm.length(fm.parse(strong[0], list(concepts))) < fm.length(fm.parse(plain[0], list(concepts)))
    assert dense_best_formula(unit, concepts, penalty=0.5)[0] == strong[0]


def test_bad_shapes() -> None:
    with pytest.raises(InvalidArgumentError):
        best_formula(np.zeros((2, 3, 3), bool), {"a": np.zeros((2, 4, 4), bool)})
    with pytest.raises(InvalidArgumentError):
        best_formula(np.zeros((3, 3), bool), {"a": np.zeros((3, 3), bool)})
    with pytest.raises(InvalidArgumentError):
        best_formula(np.zeros((2, 3, 3), bool), {"a": np.zeros((2, 3, 3), bool)}, beam=0)


def test_formula_strings() -> None:
    names = ["a", "b", "c", "d"]
    f = fm.combine("AND NOT", fm.combine("OR", fm.leaf(0), 1), 2)
    assert fm.to_string(f, names) == "(a OR b) AND NOT c"
    assert fm.length(f) == 4 and fm.primitives(f) == 3
    g = ("AND", ("OR", fm.leaf(0), fm.leaf(1)), ("AND NOT", fm.leaf(2), fm.leaf(3)))
    assert fm.to_string(g, names) == "(a OR b) AND (c AND NOT d)"
    assert fm.parse(fm.to_string(g, names), names) == g
    assert fm.parse("((a OR b) AND NOT c)", names) == f
