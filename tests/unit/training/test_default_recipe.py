"""Acceptance: the default recipe (make demo) reaches >= 97 % test accuracy on the built-in digits."""

from __future__ import annotations

from pathlib import Path

import pytest

from xai_serve.training import load_recipe, train

RECIPE = Path(__file__).resolve().parents[3] / "training" / "digits_simplenet.toml"


@pytest.mark.slow
def test_default_recipe_reaches_97_percent(tmp_path: Path) -> None:
    result = train(load_recipe(RECIPE), tmp_path / "digits_simplenet", progress=False)
    assert result.metrics["accuracy"] >= 0.97, result.metrics["accuracy"]
