"""Basic metrics against hand counts, including the General Pattern Theory code's swapped precision/recall
labels."""

from __future__ import annotations

import pytest

from xai_serve.evaluation.basic import accuracy, per_class_metrics, summary

Y_TRUE = [0, 0, 0, 1, 1, 2, 2, 2, 2]
Y_PRED2 = [0, 0, 1, 1, 1, 2, 2, 2, 1]
# class 0: TP 2, FP 0, FN 1 -> P 1, R 2/3 ; class 1: TP 2, FP 2, FN 0 -> P 1/2, R 1 ;
# class 2: TP 3, FP 0, FN 1 -> P 1, R 3/4 ; class 3 (never seen): 0, 0


def test_per_class_correct_names():
    rows = per_class_metrics(Y_TRUE, Y_PRED2, ["a", "b", "c", "d"])
    got = [(r["precision"], r["recall"], r["support"]) for r in rows]
    assert got == [
        pytest.approx((1.0, 2 / 3, 3)),
        pytest.approx((0.5, 1.0, 2)),
        pytest.approx((1.0, 0.75, 4)),
        (0.0, 0.0, 0),
    ]
    assert rows[1]["f1"] == pytest.approx(2 * 0.5 * 1.0 / 1.5)
    assert rows[0]["label"] == "a"


def test_seed_parity_swaps_labels_and_keeps_true_values():
    rows = per_class_metrics(Y_TRUE, Y_PRED2, ["a", "b", "c", "d"], seed_parity=True)
    # the General Pattern Theory code's "precision" is recall
    assert rows[1]["precision"] == pytest.approx(1.0)
    assert rows[1]["recall"] == pytest.approx(0.5)
    assert rows[1]["precision_true"] == pytest.approx(0.5)
    assert rows[1]["recall_true"] == pytest.approx(1.0)


def test_summary_population_std_and_accuracy():
    rows = per_class_metrics(Y_TRUE, Y_PRED2, ["a", "b", "c", "d"])
    acc = accuracy(Y_TRUE, Y_PRED2)
    assert acc == pytest.approx(7 / 9)
    mean, std = summary(rows, acc)
    p = [1.0, 0.5, 1.0, 0.0]
    m = sum(p) / 4
    assert mean["precision"] == pytest.approx(m)
    assert std["precision"] == pytest.approx((sum((v - m) ** 2 for v in p) / 4) ** 0.5)
    assert mean["accuracy"] == pytest.approx(7 / 9) and std["accuracy"] is None
