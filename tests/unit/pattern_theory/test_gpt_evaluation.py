"""``xai evaluate`` on a GPT checkpoint: basic adds seed A's yg/ys pixel metrics; single-pixel AOPC runs
on the classifier output y."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pytest
import torch

from xai_serve.data import load_dataset
from xai_serve.evaluation.context import EvalContext
from xai_serve.evaluation.runner import run_suite
from xai_serve.evaluation.specs.basic import BasicOptions
from xai_serve.evaluation.specs.faithfulness import FaithfulnessOptions
from xai_serve.pattern_theory.metrics import pixel_metrics
from xai_serve.testing import write_gpt_checkpoint


@pytest.fixture(scope="module")
def ckpt(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_gpt_checkpoint(tmp_path_factory.mktemp("gptckpt"))


def test_basic_adds_pixel_metrics(ckpt: Path, tmp_path: Path) -> None:
    ctx = EvalContext.from_checkpoint(str(ckpt), dataset="pattern_digits", split="test", samples=6)
    assert ctx.full_model is not None and set(ctx.components) == {"yg", "ys"}
    result = run_suite("basic", ctx, BasicOptions(seed_parity=True, batch_size=4), tmp_path / "e", seed=0)
    rows = list(
        csv.DictReader((tmp_path / "e" / "basic_pixels.csv").read_text(encoding="utf-8").splitlines())
    )
    assert len(rows) == 6
    assert {"yg_acc", "yg_precision", "yg_recall", "yg_precision_true", "ys_recall_true"} <= set(rows[0])
    # recompute the first sample by hand
    x = ctx.images[:1]
    with torch.no_grad():
        _, yg, _ = ctx.full_model(x)
    truth = load_dataset("pattern_digits", "test").dataset.yg[int(ctx.indices[0])].numpy()
    m = pixel_metrics(truth, yg[0].argmax(0).numpy(), seed_parity=True)
    assert float(rows[0]["yg_acc"]) == pytest.approx(m["acc"])
    assert float(rows[0]["yg_precision"]) == pytest.approx(m["precision"])
    assert result["pixels"]["yg_acc"] == pytest.approx(np.mean([float(r["yg_acc"]) for r in rows]))
    assert 0 <= result["accuracy"] <= 1


def test_single_pixel_aopc_runs_on_y(ckpt: Path, tmp_path: Path) -> None:
    ctx = EvalContext.from_checkpoint(
        str(ckpt), dataset="pattern_digits", split="test", samples=2, methods=["gradient"]
    )
    opts = FaithfulnessOptions(kinds=[], single_pixel=True, single_pixel_steps=5)
    run_suite("faithfulness", ctx, opts, tmp_path / "f", seed=0)
    files = sorted(p.name for p in (tmp_path / "f").rglob("*.csv"))
    assert files, "no AOPC output written"
