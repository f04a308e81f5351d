"""Feature-removal curves (docs/methods.md#feature-removal, on MNIST-style digits): 1 % steps to
100 %, MoRF and LeRF, AUCs.

The curve helper is checked against a direct loop on a linear model where relevance w * x is exact
(MoRF must drop fastest), and the suite end to end through `xai evaluate feature-removal`."""

from __future__ import annotations

import csv
import json

import numpy as np
import pytest
import torch
from typer.testing import CliRunner

from xai_serve.cli import app
from xai_serve.evaluation.ordering import pixel_steps
from xai_serve.evaluation.suites.feature_removal import _removal_curve


def _rows(path) -> list[dict[str, str]]:
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def test_curve_on_a_linear_model_with_exact_relevance() -> None:
    gen = torch.Generator().manual_seed(0)
    w = torch.randn(3, 36, generator=gen, dtype=torch.float64)
    x = torch.rand(8, 1, 6, 6, generator=gen, dtype=torch.float64)
    label = (x.flatten(1) @ w.T).argmax(1)  # the model is right on every sample before removal
    base = torch.zeros_like(x)

    def probs(v: torch.Tensor) -> torch.Tensor:
        return torch.softmax(v.flatten(1) @ w.T, dim=1)

    relevance = (x.flatten(1) * w[label]).reshape(x.shape)  # exact contributions to the target logit
    counts = [round(k / 36 * 36) for k in range(37)]  # one pixel per step
    curves = {}
    for order in ("morf", "lerf"):
        steps, _ = pixel_steps(relevance, order)
        correct, score = _removal_curve(probs, x, base, steps, label, label, counts)
        # reference: remove pixels one by one in the order, directly
        flat_r = relevance.flatten(1)
        idx = flat_r.argsort(dim=1, descending=order == "morf", stable=True)
        expected = []
        for n in counts:
            v = x.flatten(1).clone()
            for i in range(x.shape[0]):
                v[i, idx[i, :n]] = 0.0
            expected.append(probs(v.reshape(x.shape))[torch.arange(8), label].numpy())
        np.testing.assert_allclose(score, np.stack(expected, axis=1), rtol=1e-12)
        assert correct.shape == (8, 37) and correct[:, 0].all()
        curves[order] = score.mean(0)
    # removing the most relevant pixels lowers the target logit fastest: the MoRF curve lies below
    assert np.trapezoid(curves["morf"]) < np.trapezoid(curves["lerf"])
    assert curves["morf"][-1] == pytest.approx(curves["lerf"][-1])  # all pixels removed: the same image


def test_suite_writes_curves_and_aucs(digits_checkpoint, tmp_path) -> None:
    out = tmp_path / "fr"
    res = CliRunner().invoke(
        app,
        ["evaluate", "feature-removal", "--checkpoint", str(digits_checkpoint), "--out", str(out),
         "--samples", "6", "--methods", "gradient", "--max-figures", "0", "--curve-steps", "100"],
    )  # fmt: skip
    assert res.exit_code == 0, res.output
    curves = _rows(out / "curves.csv")
    assert len(curves) == 2 * 101
    by_order = {o: [r for r in curves if r["order"] == o] for o in ("morf", "lerf")}
    original = {r["variant"]: r for r in _rows(out / "summary.csv")}["original"]
    for order, rows in by_order.items():
        fractions = [float(r["fraction"]) for r in rows]
        assert fractions[0] == 0 and fractions[-1] == 1 and np.allclose(np.diff(fractions), 0.01)
        assert float(rows[0]["accuracy"]) == pytest.approx(float(original["accuracy"]))
        acc = np.array([float(r["accuracy"]) for r in rows])
        prob = np.array([float(r["target_probability"]) for r in rows])
        summary = {r["order"]: r for r in _rows(out / "curves_summary.csv")}[order]
        assert float(summary["auc_accuracy"]) == pytest.approx(np.trapezoid(acc, fractions), rel=1e-6)
        assert float(summary["auc_probability"]) == pytest.approx(np.trapezoid(prob, fractions), rel=1e-6)
    morf_end, lerf_end = by_order["morf"][-1], by_order["lerf"][-1]
    assert morf_end["target_probability"] == lerf_end["target_probability"]  # every pixel removed
    s = {r["order"]: r for r in _rows(out / "curves_summary.csv")}
    assert float(s["morf"]["abpc_probability"]) == pytest.approx(
        float(s["lerf"]["auc_probability"]) - float(s["morf"]["auc_probability"])
    )
    assert float(s["morf"]["auc_probability"]) < float(s["lerf"]["auc_probability"])
    for png in ("curves_accuracy.png", "curves_probability.png"):
        assert (out / png).stat().st_size > 0
    assert json.loads((out / "run.json").read_text())
