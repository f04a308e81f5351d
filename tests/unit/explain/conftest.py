"""Shared models and helpers for the explanation-engine tests (float64, random weights, eval mode).

``zoo(name)`` returns ``(model, x)``: a fresh model and a small input batch. Names:

* ``mlp``: xai_serve ``mlp`` on 1x8x8 (Flatten, Linear 64-32-16-10, ReLU), biases;
* ``cnn``: conv-ReLU-maxpool x2, Linear-ReLU-Linear, biases (no BatchNorm, no average pooling);
* ``simplenet``: xai_serve ``simplenet_310k`` on 1x28x28 with randomised BatchNorm statistics;
* ``resnet18``: torchvision ResNet-18 (10 classes) at 3x64x64, randomised BatchNorm, in-place ReLUs
  and ``out += identity`` exactly as torchvision builds it;
* ``resnet18_32``: the same at 3x32x32 (cheaper, for the LRP parity sweep);
* ``resnet10`` / ``bottleneck``: torchvision ResNets with one BasicBlock / Bottleneck per stage, 3x16x16;
* ``resnet20``: xai_serve ``resnet20`` (Sum modules, option-A shortcuts), 3x32x32;
* ``mlp_nobias`` / ``cnn_nobias``: wider (64 hidden units) and without biases (for conservation: alpha-beta
  conserves only where every unit has positive and negative contributions).
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable

import pytest
import torch
import torchvision
from torch import nn
from torchvision.models.resnet import BasicBlock, Bottleneck

from xai_serve.models import create_model

Zoo = Callable[..., tuple[nn.Module, torch.Tensor]]


def randomise_batchnorm(model: nn.Module, seed: int = 0) -> None:
    gen = torch.Generator().manual_seed(seed)
    for module in model.modules():
        if isinstance(module, nn.BatchNorm1d | nn.BatchNorm2d):
            n = module.num_features
            with torch.no_grad():
                module.running_mean.copy_(torch.rand(n, generator=gen) * 0.6 - 0.3)
                module.running_var.copy_(torch.rand(n, generator=gen) * 1.5 + 0.5)
                module.weight.copy_(torch.rand(n, generator=gen) + 0.5)
                module.bias.copy_(torch.rand(n, generator=gen) * 0.4 - 0.2)


def _cnn(bias: bool = True, width: int = 16) -> nn.Module:
    return nn.Sequential(
        nn.Conv2d(1, 6, 3, padding=1, bias=bias),
        nn.ReLU(),
        nn.MaxPool2d(2),
        nn.Conv2d(6, 8, 3, padding=1, bias=bias),
        nn.ReLU(),
        nn.MaxPool2d(2),
        nn.Flatten(),
        nn.Linear(32, width, bias=bias),
        nn.ReLU(),
        nn.Linear(width, 10, bias=bias),
    )


def _build(name: str) -> tuple[nn.Module, tuple[int, ...]]:
    if name == "mlp":
        return create_model("mlp", in_features=64, hidden=(32, 16), num_classes=10), (1, 8, 8)
    if name == "mlp_nobias":
        model = create_model("mlp", in_features=64, hidden=(64, 64), num_classes=10)
        for m in model.modules():
            if isinstance(m, nn.Linear):
                m.bias = None
        return model, (1, 8, 8)
    if name == "cnn":
        return _cnn(), (1, 8, 8)
    if name == "cnn_nobias":
        return _cnn(bias=False, width=64), (1, 8, 8)
    if name == "simplenet":
        return create_model("simplenet_310k"), (1, 28, 28)
    if name == "resnet18":
        return torchvision.models.resnet18(weights=None, num_classes=10), (3, 64, 64)
    if name == "resnet10":  # torchvision blocks, one per stage: the sweep's residual model
        return torchvision.models.resnet.ResNet(BasicBlock, [1, 1, 1, 1], num_classes=10), (3, 16, 16)
    if name == "bottleneck":
        return torchvision.models.resnet.ResNet(Bottleneck, [1, 1, 1, 1], num_classes=10), (3, 16, 16)
    if name == "resnet20":
        return create_model("resnet20"), (3, 32, 32)
    if name == "vit":  # a small ViT (attention LRP); torchvision zero-initialises the head: re-drawn
        model = create_model("vit", image_size=16, patch_size=4, num_layers=2, hidden_dim=32, mlp_dim=64)
        nn.init.normal_(model.heads.head.weight, std=0.5)
        return model, (1, 16, 16)
    if name == "resnet18_32":
        return torchvision.models.resnet18(weights=None, num_classes=10), (3, 32, 32)
    raise KeyError(name)


def make(
    name: str, batch: int = 3, seed: int = 0, dtype: torch.dtype = torch.float64
) -> tuple[nn.Module, torch.Tensor]:
    torch.manual_seed(seed)
    model, shape = _build(name)
    randomise_batchnorm(model, seed)
    model = model.to(dtype).eval()
    x = torch.randn(batch, *shape, generator=torch.Generator().manual_seed(seed + 1), dtype=dtype)
    return model, x


@pytest.fixture
def zoo() -> Zoo:
    """``zoo(name, batch=3, seed=0, dtype=float64) -> (model, x)``."""
    return make


def rel_max_diff(a: torch.Tensor, b: torch.Tensor) -> float:
    """max |a - b| / max |b| (0 when both are zero)."""
    scale = b.abs().max().item()
    diff = (a - b).abs().max().item()
    return diff / scale if scale else diff


OBSERVED: dict[str, float] = {}


@pytest.fixture
def rel_diff(request: pytest.FixtureRequest) -> Callable[[torch.Tensor, torch.Tensor], float]:
    """``rel_max_diff``, recording the largest value per test (written to ``$XAI_OBSERVED_DIFFS``)."""

    def measure(a: torch.Tensor, b: torch.Tensor) -> float:
        value = rel_max_diff(a, b)
        OBSERVED[request.node.nodeid] = max(value, OBSERVED.get(request.node.nodeid, 0.0))
        return value

    return measure


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    path = os.environ.get("XAI_OBSERVED_DIFFS")
    if path and OBSERVED:
        with open(path, "w") as fh:
            json.dump(OBSERVED, fh, indent=1, sort_keys=True)


def state_snapshot(model: nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in model.state_dict().items()}


@pytest.fixture
def snapshot() -> Callable[[nn.Module], dict[str, torch.Tensor]]:
    return state_snapshot
