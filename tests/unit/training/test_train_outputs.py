from __future__ import annotations

import csv
import json
import re
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from xai_serve.data import load_dataset
from xai_serve.errors import CheckpointError
from xai_serve.models import load_checkpoint
from xai_serve.training import Recipe, load_recipe, train


def test_checkpoint_directory_layout(trained_tiny: Path) -> None:
    for name in (
        "model.json",
        "weights.pt",
        "best.pt",
        "recipe.toml",
        "metrics.json",
        "history.csv",
        "confusion_matrix.png",
        "resume.pt",
    ):
        assert (trained_tiny / name).is_file(), name
    assert (trained_tiny / "misclassified").is_dir()
    assert not list(trained_tiny.glob("*.tmp")) and not list(trained_tiny.glob(".*"))
    assert load_recipe(trained_tiny / "recipe.toml").name == "tiny"
    card = json.loads((trained_tiny / "model.json").read_text())
    assert card["model"] == "mlp" and card["model_kwargs"]["input_shape"] == [1, 28, 28]
    assert card["labels"] == [str(i) for i in range(10)] and card["num_classes"] == 10
    for name in ("weights.pt", "best.pt", "resume.pt"):
        torch.load(trained_tiny / name, weights_only=True)


def test_metrics_match_a_recomputation_on_the_test_split(trained_tiny: Path) -> None:
    metrics = json.loads((trained_tiny / "metrics.json").read_text())
    model, _ = load_checkpoint(trained_tiny)
    test = load_dataset("digits", "test")
    x = torch.stack([test.dataset[i][0] for i in range(len(test.dataset))])  # type: ignore[arg-type]
    y = np.array([test.dataset[i][1] for i in range(len(test.dataset))])  # type: ignore[arg-type]
    with torch.no_grad():
        pred = model(x).argmax(1).numpy()
    assert metrics["n"] == len(y) == 359
    assert metrics["accuracy"] == pytest.approx(float((pred == y).mean()), abs=1e-12)
    cm = np.array(metrics["confusion_matrix"])
    assert cm.shape == (10, 10) and cm.sum() == 359 and np.trace(cm) == int((pred == y).sum())
    recall_3 = cm[3, 3] / cm[3].sum()
    assert metrics["per_class"]["3"]["recall"] == pytest.approx(recall_3)
    assert metrics["weights"] == "best.pt" and metrics["seed"] == 3 and metrics["epochs"] == 4
    assert metrics["accuracy"] > 0.85  # a 4-epoch MLP already separates the digits well


def test_misclassified_pngs_are_named_by_true_and_predicted_class(trained_tiny: Path) -> None:
    metrics = json.loads((trained_tiny / "metrics.json").read_text())
    files = sorted((trained_tiny / "misclassified").iterdir())
    assert len(files) == metrics["misclassified"] == metrics["n"] - round(metrics["accuracy"] * metrics["n"])
    test = load_dataset("digits", "test")
    cm = np.array(metrics["confusion_matrix"])
    for path in files:
        match = re.fullmatch(r"(\d{5})_true(\d)_pred(\d)\.png", path.name)
        assert match, path.name
        index, true, pred = map(int, match.groups())
        assert true != pred and test.dataset[index][1] == true and cm[true, pred] > 0
        with Image.open(path) as image:
            assert image.size == (28, 28) and image.mode == "L"


def test_history_has_one_row_per_epoch(trained_tiny: Path) -> None:
    with open(trained_tiny / "history.csv") as handle:
        rows = list(csv.DictReader(handle))
    assert [int(r["epoch"]) for r in rows] == [1, 2, 3, 4]
    assert float(rows[0]["lr"]) == pytest.approx(0.05)
    best = [r for r in rows if r["best"] == "True"]
    metrics = json.loads((trained_tiny / "metrics.json").read_text())
    assert int(best[-1]["epoch"]) == metrics["best_epoch"]
    assert float(best[-1]["val_acc"]) == pytest.approx(metrics["best_val_accuracy"], abs=1e-6)


def test_existing_output_is_refused_without_force(tiny_recipe: Callable[..., Recipe], tmp_path: Path) -> None:
    out = tmp_path / "run"
    out.mkdir()
    (out / "model.json").write_text("{}")
    with pytest.raises(CheckpointError, match="--force"):
        train(tiny_recipe(epochs=1), out, progress=False)
    train(tiny_recipe(epochs=1), out, force=True, progress=False)
    assert (out / "metrics.json").is_file()
    other = tmp_path / "not_a_run"
    other.mkdir()
    (other / "notes.txt").write_text("keep me")
    with pytest.raises(CheckpointError, match="does not look like"):
        train(tiny_recipe(epochs=1), other, force=True, progress=False)
    assert (other / "notes.txt").read_text() == "keep me"
