"""A tiny digits MLP checkpoint (random weights: export and graph do not need training)."""

from __future__ import annotations

import pytest
import torch


@pytest.fixture(scope="session")
def digits_ckpt(tmp_path_factory):
    from xai_serve.models import ModelCard, create_model

    path = tmp_path_factory.mktemp("ckpt") / "mlp"
    path.mkdir()
    kwargs = {"input_shape": [1, 28, 28], "hidden": [32, 16]}
    torch.manual_seed(0)
    model = create_model("mlp", **kwargs)
    card = ModelCard(
        model="mlp",
        model_kwargs=kwargs,
        dataset="digits",
        input_shape=[1, 28, 28],
        mean=[0.5],
        std=[0.25],
        labels=[str(i) for i in range(10)],
    )
    card.save(path / "model.json")
    torch.save(model.state_dict(), path / "best.pt")
    torch.save(model.state_dict(), path / "weights.pt")
    return path
