"""Shared fixtures of the evaluation tests: tiny deterministic models and inputs."""

from __future__ import annotations

import pytest
import torch
from torch import nn


def tiny_cnn(seed: int = 0, in_chans: int = 1, num_classes: int = 10) -> nn.Module:
    torch.manual_seed(seed)
    model = nn.Sequential(
        nn.Conv2d(in_chans, 4, 3, padding=1),
        nn.ReLU(),
        nn.MaxPool2d(2),
        nn.Conv2d(4, 8, 3, padding=1),
        nn.ReLU(),
        nn.AdaptiveAvgPool2d(2),
        nn.Flatten(),
        nn.Linear(32, num_classes),
    )
    return model.eval()


@pytest.fixture
def cnn() -> nn.Module:
    return tiny_cnn()


@pytest.fixture
def batch() -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(x, y, a): 6 random 1x12x12 images, labels, tie-free random attributions."""
    g = torch.Generator().manual_seed(1)
    x = torch.randn(6, 1, 12, 12, generator=g)
    y = torch.randint(0, 10, (6,), generator=g)
    a = torch.randn(6, 1, 12, 12, generator=g)
    return x, y, a


@pytest.fixture(scope="session")
def trained_digits_mlp() -> tuple[nn.Module, torch.Tensor, torch.Tensor]:
    """An MLP trained for ~1 s on scikit-learn's 8x8 digits; returns (model, x_test, y_test)."""
    from sklearn.datasets import load_digits

    d = load_digits()
    x = torch.tensor(d.images, dtype=torch.float32).unsqueeze(1) / 16.0
    x = (x - 0.3) / 0.4
    y = torch.tensor(d.target)
    torch.manual_seed(0)
    model = nn.Sequential(
        nn.Flatten(), nn.Linear(64, 64), nn.ReLU(), nn.Linear(64, 32), nn.ReLU(), nn.Linear(32, 10)
    )
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    xtr, ytr = x[:1400], y[:1400]
    for _ in range(150):
        opt.zero_grad()
        nn.functional.cross_entropy(model(xtr), ytr).backward()
        opt.step()
    model.eval()
    for p in model.parameters():
        p.requires_grad_(False)
    return model, x[1400:], y[1400:]


def _gradient_attribution(model: nn.Module):
    """Plain input gradient of the target logit: an explicit attribution callable (x, target)."""

    def attribute(x: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        x = x.detach().clone().requires_grad_(True)
        out = model(x).gather(1, target.view(-1, 1)).sum()
        (g,) = torch.autograd.grad(out, x)
        return g

    return attribute


@pytest.fixture(scope="session")
def gradient_attribution():
    """Factory: model -> gradient attribution callable (x, target) -> Tensor."""
    return _gradient_attribution


def make_digits_checkpoint(path, *, model_name: str = "mlp", steps: int = 60) -> None:
    """Train a small registered model on the built-in digits for a few seconds and save it in the
    checkpoint layout ``load_checkpoint`` reads (model.json + best.pt + weights.pt)."""
    from xai_serve.data import load_dataset
    from xai_serve.models import ModelCard, create_model

    train = load_dataset("digits", "train")
    x = torch.stack([train.dataset[i][0] for i in range(len(train.dataset))])
    y = torch.tensor([train.dataset[i][1] for i in range(len(train.dataset))])
    kwargs = {"input_shape": [1, 28, 28], "hidden": [64, 32]} if model_name == "mlp" else {}
    torch.manual_seed(0)
    model = create_model(model_name, **kwargs)
    opt = torch.optim.Adam(model.parameters(), lr=3e-3)
    model.train()
    for _ in range(steps):
        opt.zero_grad()
        nn.functional.cross_entropy(model(x), y).backward()
        opt.step()
    card = ModelCard(
        model=model_name,
        model_kwargs=kwargs,
        dataset="digits",
        input_shape=[1, 28, 28],
        mean=list(train.mean),
        std=list(train.std),
        labels=list(train.labels),
    )
    path.mkdir(parents=True, exist_ok=True)
    card.save(path / "model.json")
    torch.save(model.state_dict(), path / "best.pt")
    torch.save(model.state_dict(), path / "weights.pt")


@pytest.fixture(scope="session")
def digits_checkpoint(tmp_path_factory):
    """A checkpoint directory of an MLP trained ~2 s on the built-in digits (train split)."""
    path = tmp_path_factory.mktemp("ckpt") / "digits_mlp"
    make_digits_checkpoint(path)
    return path
