"""Fixtures of the dissection tests: a synthetic Broden-format folder and a random digits SimpleNet
checkpoint (model.json + best.pt)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest


def write_simplenet_checkpoint(d: Path, seed: int = 0) -> Path:
    import torch

    from xai_serve.models import ModelCard, create_model

    d.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(seed)
    torch.save(create_model("simplenet_310k", num_classes=10).state_dict(), d / "best.pt")
    ModelCard(
        model="simplenet_310k",
        model_kwargs={"num_classes": 10},
        dataset="digits",
        input_shape=[1, 28, 28],
        mean=[0.25],
        std=[0.5],
        labels=[f"digit {i}" for i in range(10)],
    ).save(d / "model.json")
    return d


@pytest.fixture(scope="session")
def broden(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, np.ndarray]]:
    from xai_serve.data.synthetic_broden import write_synthetic_broden

    root = tmp_path_factory.mktemp("broden")
    truth = write_synthetic_broden(root, 24, image_size=56, mask_size=28, seed=3)
    return root, truth


@pytest.fixture(scope="session")
def checkpoint(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_simplenet_checkpoint(tmp_path_factory.mktemp("ckpt"))
