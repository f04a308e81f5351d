from __future__ import annotations

import pytest
import torch
from torch import nn

from xai_serve.models import create_model


def n_params(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters() if p.requires_grad)


def test_simplenet_310k_has_exactly_311210_parameters_for_one_channel() -> None:
    assert n_params(create_model("simplenet_310k", in_chans=1)) == 311_210


def test_simplenet_310k_has_312362_parameters_for_three_channels() -> None:
    assert n_params(create_model("simplenet_310k", in_chans=3)) == 312_362


def test_simplenet_5m_cifar_variant_size() -> None:
    # 13 convs + extra pool; ~5.48M quoted by the SimpleNet study, 5,498,378 by construction from the
    # config in docs/methods.md#simplenet-model
    assert n_params(create_model("simplenet_5m")) == 5_498_378


def test_simplenet_310k_feature_indices_match_the_seed_listing() -> None:
    features = create_model("simplenet_310k").features
    assert len(features) == 55
    kinds = {nn.Conv2d: "C", nn.BatchNorm2d: "B", nn.ReLU: "R", nn.Dropout2d: "D", nn.MaxPool2d: "P"}
    layout = "".join(kinds[type(m)] for m in features)
    assert layout == ("CBRDCBRDCBRDCBRPDCBRDCBRDCBRPDCBRDCBRPDCBRDCBRDCBRPDCBR")
    assert features[43].kernel_size == (1, 1) and features[47].kernel_size == (1, 1)
    assert features[0].in_channels == 1 and features[52].out_channels == 64
    assert all(m.momentum == 0.05 and m.eps == 1e-5 for m in features if isinstance(m, nn.BatchNorm2d))


def test_simplenet_310k_spatial_size_is_one_before_global_pool() -> None:
    model = create_model("simplenet_310k").eval()
    with torch.no_grad():
        assert model.features(torch.zeros(1, 1, 28, 28)).shape == (1, 64, 1, 1)


@pytest.mark.parametrize(
    ("activation", "kind"), [("relu", nn.ReLU), ("sigmoid", nn.Sigmoid), ("tanh", nn.Tanh)]
)
def test_mlp_activation_and_sizes(activation: str, kind: type[nn.Module]) -> None:
    model = create_model("mlp", in_features=64, hidden=[30, 20], activation=activation, num_classes=10)
    assert n_params(model) == 64 * 30 + 30 + 30 * 20 + 20 + 20 * 10 + 10
    assert sum(isinstance(m, kind) for m in model.modules()) == 2
    assert model(torch.zeros(3, 1, 8, 8)).shape == (3, 10)


def test_resnet20_has_the_cifar_resnet20_size() -> None:
    assert n_params(create_model("resnet20")) == 269_722  # He et al. 2016: 0.27M
