"""The General Pattern Theory pixel metrics (docs/methods.md#gpt-pixel-metrics) on hand-made arrays, including
the original code's swapped call."""

from __future__ import annotations

import numpy as np
import pytest

from xai_serve.evaluation.pixel_metrics import one_sample_metrics, pixel_metrics, summarise


def test_hand_made_maps() -> None:
    truth = np.zeros((4, 4), dtype=int)
    truth[0, 0], truth[1, 1], truth[2, 2] = 1, 2, 3  # three seed pixels
    pred = np.zeros((4, 4), dtype=int)
    pred[0, 0] = 1  # hit
    pred[1, 1] = 5  # wrong class
    pred[3, 3] = 2  # false alarm; truth[2, 2] missed
    # correct reading: TP=1, FP = 1 false alarm + 1 wrong class = 2, FN = 1 missed
    m = pixel_metrics(truth, pred)
    assert m == pytest.approx({"acc": 13 / 16, "precision": 1 / 3, "recall": 1 / 2})
    # the original code's call (truth, prediction): TP=1, "FP" = missed + wrong = 2, "FN" = false alarm = 1
    s = pixel_metrics(truth, pred, seed_parity=True)
    assert s["precision"] == pytest.approx(1 / 3) and s["recall"] == pytest.approx(1 / 2)
    assert s["precision_true"] == pytest.approx(1 / 3) and s["recall_true"] == pytest.approx(1 / 2)
    # asymmetric case: two false alarms, nothing missed -> precision 1/3, recall 1; the original swaps them
    pred2 = truth.copy()
    pred2[3, 0], pred2[3, 1] = 1, 1
    pred2[1, 1], pred2[2, 2] = 0, 0
    pred2[1, 1] = 2
    pred2[2, 2] = 3
    pred2[0, 0] = 1
    assert one_sample_metrics(pred2, truth) == pytest.approx(
        {"acc": 14 / 16, "precision": 3 / 5, "recall": 1.0}
    )
    seed = pixel_metrics(truth, pred2, seed_parity=True)
    assert seed["precision"] == pytest.approx(1.0) and seed["recall"] == pytest.approx(3 / 5)
    assert seed["precision_true"] == pytest.approx(3 / 5) and seed["recall_true"] == pytest.approx(1.0)


def test_no_true_positive_gives_zero_and_summary_uses_population_std() -> None:
    truth = np.zeros((3, 3), dtype=int)
    truth[1, 1] = 1
    assert pixel_metrics(truth, np.zeros_like(truth)) == {"acc": 8 / 9, "precision": 0.0, "recall": 0.0}
    s = summarise([{"a": 1.0}, {"a": 3.0}])
    assert s == {"mean": {"a": 2.0}, "std": {"a": 1.0}}
