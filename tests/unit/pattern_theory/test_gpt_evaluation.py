"""``xai evaluate`` on a General Pattern Theory checkpoint (ResGPTNet, Tjoa & Guan): ``basic`` adds the
per-sample pixel metrics of the ``yg`` / ``ys`` maps (docs/methods.md#gpt-pixel-metrics), the single-pixel
AOPC variant (docs/methods.md#gpt-single-pixel-aopc) runs on the classifier output ``y``. Every value is
checked against one computed here, from the definitions, on the same fixture."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pytest
import torch

from xai_serve.data import load_dataset
from xai_serve.evaluation.context import EvalContext, batch_generator
from xai_serve.evaluation.registry import get_suite
from xai_serve.evaluation.runner import run_suite
from xai_serve.testing import write_gpt_checkpoint

BasicOptions = get_suite("basic").options
FaithfulnessOptions = get_suite("faithfulness").options


@pytest.fixture(scope="module")
def ckpt(tmp_path_factory: pytest.TempPathFactory) -> Path:
    # generator_bias: some pixels predict a non-empty generator, so precision / recall are not all 0
    return write_gpt_checkpoint(tmp_path_factory.mktemp("gptckpt"), seed=2, generator_bias=0.5)


def _csv(path: Path) -> list[dict[str, str]]:
    return list(csv.DictReader(path.read_text(encoding="utf-8").splitlines()))


def _expected_pixel_metrics(truth: np.ndarray, pred: np.ndarray) -> dict[str, float]:
    """docs/methods.md#gpt-pixel-metrics by counting (0 = background): the correct precision / recall and the
    original code's swapped labels (its ``precision`` is TP over the true foreground, its ``recall`` TP
    over TP plus false alarms)."""
    tp = int(((pred == truth) & (truth > 0)).sum())
    missed = int(((pred == 0) & (truth > 0)).sum())
    alarms = int(((pred > 0) & (truth == 0)).sum())
    return {
        "acc": float((pred == truth).sum() / truth.size),
        "precision": tp / int((truth > 0).sum()) if tp else 0.0,
        "recall": tp / (tp + alarms) if tp else 0.0,
        "precision_true": tp / int((pred > 0).sum()) if tp else 0.0,
        "recall_true": tp / (tp + missed) if tp else 0.0,
    }


def test_basic_pixel_metrics_and_accuracy_equal_the_definitions(ckpt: Path, tmp_path: Path) -> None:
    ctx = EvalContext.from_checkpoint(str(ckpt), dataset="pattern_digits", split="test", samples=6)
    assert ctx.full_model is not None and set(ctx.components) == {"yg", "ys"}
    result = run_suite("basic", ctx, BasicOptions(seed_parity=True, batch_size=4), tmp_path / "e", seed=0)
    rows = _csv(tmp_path / "e" / "basic_pixels.csv")
    assert len(rows) == 6

    data = load_dataset("pattern_digits", "test").dataset
    with torch.no_grad():
        y, yg, ys = ctx.full_model(ctx.images)
    expected: list[dict[str, float]] = []
    for j, index in enumerate(ctx.indices.tolist()):
        row = {}
        for name, out in (("yg", yg), ("ys", ys)):
            truth = getattr(data, name)[index].numpy()
            for k, v in _expected_pixel_metrics(truth, out[j].argmax(0).numpy()).items():
                row[f"{name}_{k}"] = v
        expected.append(row)
    assert any(r["yg_precision_true"] > 0 for r in expected), "the fixture predicts no true generator pixel"
    assert set(rows[0]) == set(expected[0])
    for got, want in zip(rows, expected, strict=True):
        assert {k: float(v) for k, v in got.items()} == pytest.approx(want, rel=1e-12, abs=1e-12)

    summary = {r["stat"]: r for r in _csv(tmp_path / "e" / "basic_pixels_summary.csv")}
    for col in expected[0]:
        values = np.array([r[col] for r in expected])
        assert float(summary["mean"][col]) == pytest.approx(values.mean(), abs=1e-12)
        assert float(summary["std"][col]) == pytest.approx(values.std(), abs=1e-12)  # population std
        assert result["pixels"][col] == pytest.approx(values.mean(), abs=1e-12)

    correct = int((y.argmax(1) == ctx.labels).sum())
    assert result["accuracy"] == correct / 6


def _expected_single_pixel_aopc(
    model: torch.nn.Module,
    x: torch.Tensor,
    target: torch.Tensor,
    a: torch.Tensor,
    steps: int,
    g: torch.Generator,
) -> np.ndarray:
    """docs/methods.md#gpt-single-pixel-aopc one sample and one step at a time: per step L, the largest
    remaining score (ties: the largest of this step's uniform draws) is zeroed and only that pixel of the
    original x is set to ``max|x| * U(-0.5, 0.5)``; AOPC[L] = sum of logit drops / (L + 1). The generator's
    draws are taken in the order the suite takes them (one (B, HW) tie-break draw per step, then the
    (B, L) noise)."""
    b = x.shape[0]
    scores = a.reshape(b, -1).to(torch.float64).clone()
    scores /= scores.abs().amax(dim=1, keepdim=True)
    ties = [torch.rand(scores.shape, generator=g, dtype=torch.float64) for _ in range(steps)]
    noise = torch.rand((b, steps), generator=g, dtype=torch.float64) - 0.5
    out = np.zeros((b, steps))
    with torch.no_grad():
        for s in range(b):
            f0 = float(model(x[s : s + 1])[0, target[s]])
            xmax = float(x[s].abs().max())
            drops = 0.0
            for step in range(steps):
                best = torch.nonzero(scores[s] == scores[s].max()).flatten()
                p = int(best[ties[step][s, best].argmax()])
                scores[s, p] = 0.0
                xp = x[s].flatten().clone()
                xp[p] = torch.tensor(xmax * float(noise[s, step]), dtype=torch.float64).to(x.dtype)
                drops += f0 - float(model(xp.view(1, *x.shape[1:]))[0, target[s]])
                out[s, step] = drops / (step + 2)  # L = step + 1
    return out


def test_single_pixel_aopc_on_y_equals_the_definition(ckpt: Path, tmp_path: Path) -> None:
    ctx = EvalContext.from_checkpoint(
        str(ckpt), dataset="pattern_digits", split="test", samples=2, methods=["gradient"]
    )
    opts = FaithfulnessOptions(kinds=[], single_pixel=True, single_pixel_steps=5)
    run_suite("faithfulness", ctx, opts, tmp_path / "f", seed=3)
    rows = _csv(tmp_path / "f" / "aopc_single_pixel.csv")
    assert {(r["attribution"], int(r["L"])) for r in rows} == {
        (m, s) for m in ("signed", "abs") for s in range(1, 6)
    }

    x, y = ctx.images, ctx.labels  # one batch (batch 0), one method (index 0), target = the true class
    a = ctx.attributions["gradient"](x, y).detach()
    for absolute, mode in ((False, "signed"), (True, "abs")):
        want = _expected_single_pixel_aopc(
            ctx.model, x, y, a.abs() if absolute else a, 5, batch_generator(3, 0, 1, 99, int(absolute))
        )
        got = sorted(
            (int(r["L"]), float(r["aopc_mean"]), float(r["aopc_std"]))
            for r in rows
            if r["attribution"] == mode
        )
        np.testing.assert_allclose([g[1] for g in got], want.mean(axis=0), rtol=1e-5, atol=1e-6)
        np.testing.assert_allclose([g[2] for g in got], want.std(axis=0), rtol=1e-4, atol=1e-6)
