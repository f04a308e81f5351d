from __future__ import annotations

import json
from pathlib import Path

import pytest

from xai_serve.app.default_model import ensure_default_model, format_metrics
from xai_serve.testing import tiny_recipe_text

TINY = tiny_recipe_text("demo_tiny", seed=0)


def test_demo_trains_once_then_reuses_the_checkpoint(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    recipe, out = tmp_path / "demo_tiny.toml", tmp_path / "runs" / "demo_tiny"
    recipe.write_text(TINY)
    assert ensure_default_model(recipe, out) == out
    assert "training demo_tiny" in capsys.readouterr().out
    stamp = (out / "best.pt").stat().st_mtime_ns
    ensure_default_model(recipe, out)
    assert "using the existing checkpoint" in capsys.readouterr().out
    assert (out / "best.pt").stat().st_mtime_ns == stamp
    text = format_metrics(json.loads((out / "metrics.json").read_text()))
    assert text.startswith("test accuracy") and "confusion matrix" in text


def test_demo_resumes_an_interrupted_default_run(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from xai_serve.training import load_recipe, train

    recipe, out = tmp_path / "demo_tiny.toml", tmp_path / "run"
    recipe.write_text(TINY)
    train(load_recipe(recipe), out, stop_after_epoch=1, progress=False)
    ensure_default_model(recipe, out)
    assert "resuming" in capsys.readouterr().out
    assert json.loads((out / "metrics.json").read_text())["epochs"] == 2
