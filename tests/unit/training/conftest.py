from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from xai_serve.training import Recipe, parse_recipe, train


def _tiny_recipe(**overrides: Any) -> Recipe:
    """A recipe that trains in about a second: small MLP on the built-in digits."""
    data: dict[str, Any] = {
        "name": "tiny",
        "seed": 3,
        "device": "cpu",
        "epochs": 4,
        "batch_size": 128,
        "model": {"name": "mlp", "kwargs": {"hidden": [32]}},
        "data": {"name": "digits"},
        "optimizer": {"name": "sgd", "lr": 0.05, "momentum": 0.9, "weight_decay": 1e-4},
        "schedule": {"name": "cosine"},
    }
    data.update(overrides)
    return parse_recipe(data)


@pytest.fixture(scope="session")
def trained_tiny(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("ckpt") / "tiny"
    train(_tiny_recipe(), out, progress=False)
    return out


@pytest.fixture
def tiny_recipe() -> Callable[..., Recipe]:
    """``tiny_recipe(**overrides)``: a recipe (small MLP on digits) that trains in about a second."""
    return _tiny_recipe
