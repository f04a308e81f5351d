from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from xai_serve.errors import CheckpointError
from xai_serve.models import ModelCard, create_model, load_checkpoint


def _card() -> ModelCard:
    return ModelCard(
        model="mlp",
        model_kwargs={"input_shape": [1, 8, 8], "hidden": [16]},
        dataset="digits",
        input_shape=[1, 8, 8],
        mean=[0.3],
        std=[0.4],
        labels=[str(i) for i in range(10)],
    )


def test_model_card_round_trip(tmp_path: Path) -> None:
    card = _card()
    assert card.num_classes == 10
    card.save(tmp_path / "model.json")
    assert ModelCard.load(tmp_path / "model.json") == card
    assert json.loads((tmp_path / "model.json").read_text())["model"] == "mlp"


def test_model_card_names_missing_keys(tmp_path: Path) -> None:
    (tmp_path / "model.json").write_text(json.dumps({"model": "mlp"}))
    with pytest.raises(CheckpointError, match="labels"):
        ModelCard.load(tmp_path / "model.json")


def test_load_checkpoint_best_and_last(tmp_path: Path) -> None:
    card = _card()
    card.save(tmp_path / "model.json")
    torch.manual_seed(0)
    best = create_model(card.model, **card.model_kwargs)
    last = create_model(card.model, **card.model_kwargs)
    torch.save(best.state_dict(), tmp_path / "best.pt")
    torch.save(last.state_dict(), tmp_path / "weights.pt")
    x = torch.randn(2, 1, 8, 8)
    model, loaded_card = load_checkpoint(tmp_path)
    assert loaded_card == card and not model.training
    assert torch.equal(model(x), best(x))
    model, _ = load_checkpoint(tmp_path, which="last")
    assert torch.equal(model(x), last(x))


def test_load_checkpoint_errors(tmp_path: Path) -> None:
    with pytest.raises(CheckpointError, match="not found"):
        load_checkpoint(tmp_path / "nope")
    _card().save(tmp_path / "model.json")
    with pytest.raises(CheckpointError, match=r"best\.pt"):
        load_checkpoint(tmp_path)
    torch.save({"x": [1, 2]}, tmp_path / "best.pt")
    with pytest.raises(CheckpointError):
        load_checkpoint(tmp_path)
