"""Acceptance: the zoo's digits ViT recipe reaches >= 95 % test accuracy on the built-in digits."""

from __future__ import annotations

from pathlib import Path

import pytest

from xai_serve.training import load_recipe, train

RECIPE = Path(__file__).resolve().parents[3] / "training" / "digits_vit.toml"


@pytest.mark.slow
def test_digits_vit_recipe_reaches_95_percent(tmp_path: Path) -> None:
    result = train(load_recipe(RECIPE), tmp_path / "digits_vit", progress=False)
    assert result.metrics["accuracy"] >= 0.95, result.metrics["accuracy"]
