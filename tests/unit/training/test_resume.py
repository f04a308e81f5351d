from __future__ import annotations

import csv
from collections.abc import Callable
from pathlib import Path

import pytest
import torch

from xai_serve.errors import CheckpointError, RecipeError
from xai_serve.training import Recipe, train


def _weights(path: Path) -> dict[str, torch.Tensor]:
    return torch.load(path, weights_only=True)


def _history(out: Path) -> list[dict[str, str]]:
    with open(out / "history.csv") as handle:
        return [{k: v for k, v in row.items() if k != "seconds"} for row in csv.DictReader(handle)]


def test_resume_equals_an_uninterrupted_run(tmp_path: Path, tiny_recipe: Callable[..., Recipe]) -> None:
    # shuffling (loader generator), dropout (global torch RNG), momentum buffers and the cosine
    # schedule all have to be restored for the weights to come out identical
    recipe = tiny_recipe(model={"name": "mlp", "kwargs": {"hidden": [32], "dropout": 0.3}})
    straight, interrupted = tmp_path / "straight", tmp_path / "interrupted"
    train(recipe, straight, progress=False)
    first = train(recipe, interrupted, stop_after_epoch=2, progress=False)
    assert not first.completed and first.epochs_done == 2
    assert not (interrupted / "metrics.json").exists()
    second = train(recipe, interrupted, resume=True, progress=False)
    assert second.completed
    for name in ("weights.pt", "best.pt"):
        a, b = _weights(straight / name), _weights(interrupted / name)
        assert a.keys() == b.keys()
        for key in a:
            assert torch.equal(a[key], b[key]), (name, key)
    assert _history(straight) == _history(interrupted)
    assert second.metrics["accuracy"] == first.metrics.get("accuracy", second.metrics["accuracy"])


def test_resume_needs_a_resume_state(tmp_path: Path, tiny_recipe: Callable[..., Recipe]) -> None:
    with pytest.raises(CheckpointError, match="nothing to resume"):
        train(tiny_recipe(), tmp_path / "never_started", resume=True, progress=False)


def test_resume_refuses_a_changed_recipe(tmp_path: Path, tiny_recipe: Callable[..., Recipe]) -> None:
    out = tmp_path / "run"
    train(tiny_recipe(), out, stop_after_epoch=1, progress=False)
    with pytest.raises(RecipeError, match="'optimizer'"):
        train(tiny_recipe(optimizer={"name": "adam", "lr": 1e-3}), out, resume=True, progress=False)
