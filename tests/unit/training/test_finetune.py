from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from pathlib import Path

import pytest
import torch

from xai_serve.errors import CheckpointError, RecipeError
from xai_serve.training import Recipe, finetune


def _digest(folder: Path) -> dict[str, str]:
    return {
        str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }


def test_finetune_starts_from_src_and_leaves_it_byte_identical(
    trained_tiny: Path, tmp_path: Path, tiny_recipe: Callable[..., Recipe]
) -> None:
    before = _digest(trained_tiny)
    mtimes = {p: p.stat().st_mtime_ns for p in trained_tiny.rglob("*")}
    # lr so small that the weights cannot move: DST's weights must equal SRC's best weights
    recipe = tiny_recipe(epochs=1, optimizer={"name": "sgd", "lr": 1e-30}, schedule={"name": "none"})
    dst = tmp_path / "dst"
    result = finetune(trained_tiny, recipe, dst, progress=False)
    assert _digest(trained_tiny) == before
    assert {p: p.stat().st_mtime_ns for p in trained_tiny.rglob("*")} == mtimes
    src_best = torch.load(trained_tiny / "best.pt", weights_only=True)
    dst_last = torch.load(dst / "weights.pt", weights_only=True)
    for key, value in src_best.items():
        torch.testing.assert_close(dst_last[key], value, rtol=0, atol=1e-20)
    assert result.metrics["finetuned_from"] == str(trained_tiny.resolve())
    src_metrics = json.loads((trained_tiny / "metrics.json").read_text())
    assert result.metrics["accuracy"] == pytest.approx(src_metrics["accuracy"])


def test_finetune_refuses_existing_dst_unless_forced(
    trained_tiny: Path, tmp_path: Path, tiny_recipe: Callable[..., Recipe]
) -> None:
    before = _digest(trained_tiny)
    dst = tmp_path / "dst"
    recipe = tiny_recipe(epochs=1)
    finetune(trained_tiny, recipe, dst, progress=False)
    with pytest.raises(CheckpointError, match="--force"):
        finetune(trained_tiny, recipe, dst, progress=False)
    finetune(trained_tiny, recipe, dst, force=True, progress=False)
    for forbidden in (trained_tiny, trained_tiny / "inner"):
        with pytest.raises(CheckpointError, match="source"):
            finetune(trained_tiny, recipe, forbidden, force=True, progress=False)
    assert _digest(trained_tiny) == before


def test_finetune_model_mismatch_names_the_key(
    trained_tiny: Path, tmp_path: Path, tiny_recipe: Callable[..., Recipe]
) -> None:
    with pytest.raises(RecipeError, match=r"'model\.name'"):
        finetune(trained_tiny, tiny_recipe(model={"name": "simplenet_310k"}), tmp_path / "x", progress=False)
