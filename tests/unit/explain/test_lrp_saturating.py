"""LRP on sigmoid and tanh MLPs (the LRP-for-MNIST study's sigmoid experiments): every composite against
Zennit (its ``Pass`` rule for activations is ours), the closed form LRP-0 = gradient x input does NOT hold
here (activations are not positively homogeneous), and conservation where the rule conserves (bias-free
network: LRP-0, gamma, alpha-beta, z+ and the flat / w^2 first-layer rules pass relevance through the
activations unchanged and redistribute it exactly at every linear layer)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn
from zennit.composites import (
    EpsilonAlpha2Beta1,
    EpsilonGammaBox,
    EpsilonPlusFlat,
    LayerMapComposite,
    SpecialFirstLayerMapComposite,
    layer_map_base,
)
from zennit.rules import AlphaBeta, Epsilon, Flat, Gamma, WSquare, ZPlus
from zennit.types import Linear

from xai_serve.explain import ModelContext, create_explainer, model_hooks
from xai_serve.models import create_model

from .conftest import rel_max_diff
from .test_lrp import _zennit

MEAN, STD = (0.2,), (0.5,)
CONTEXT = ModelContext(MEAN, STD)
Z_LOW = torch.tensor((0 - 0.2) / 0.5, dtype=torch.float64)
Z_HIGH = torch.tensor((1 - 0.2) / 0.5, dtype=torch.float64)
PARITY = 1e-5


def _uniform(rule):
    return LayerMapComposite(layer_map=[*layer_map_base(), (Linear, rule)])


ZENNIT = {
    "epsilon_plus_flat": lambda: EpsilonPlusFlat(),
    "epsilon_gamma_box": lambda: EpsilonGammaBox(low=Z_LOW, high=Z_HIGH),
    "epsilon_alpha2_beta1": lambda: EpsilonAlpha2Beta1(),
    "lrp0": lambda: _uniform(Epsilon(0.0)),
    "epsilon": lambda: _uniform(Epsilon(1e-6)),
    "gamma": lambda: _uniform(Gamma(0.25)),
    "alpha_beta": lambda: _uniform(AlphaBeta(2.0, 1.0)),
    "zplus": lambda: _uniform(ZPlus()),
}


def _mlp(activation: str, bias: bool = True, seed: int = 0) -> nn.Module:
    torch.manual_seed(seed)
    model = create_model("mlp", in_features=64, hidden=(48, 32), num_classes=10, activation=activation)
    if not bias:
        for m in model.modules():
            if isinstance(m, nn.Linear):
                m.bias = None
    return model.double().eval()


def _x(batch: int = 3) -> torch.Tensor:
    return torch.randn(batch, 1, 8, 8, dtype=torch.float64, generator=torch.Generator().manual_seed(1))


@pytest.mark.parametrize("activation", ["sigmoid", "tanh"])
@pytest.mark.parametrize("composite", sorted(ZENNIT))
def test_composite_matches_zennit(activation: str, composite: str) -> None:
    model, x, target = _mlp(activation), _x(), torch.tensor([1, 6, 3])
    ours = create_explainer("lrp", model, composite=composite, context=CONTEXT).attribute(x, target)
    assert rel_max_diff(ours.heatmap, _zennit(model, x, target, ZENNIT[composite]())) <= PARITY
    assert model_hooks(model) == []


@pytest.mark.parametrize("activation", ["sigmoid", "tanh"])
@pytest.mark.parametrize(("first", "zennit_first"), [("flat", Flat()), ("wsquare", WSquare())])
def test_first_layer_rules_match_zennit(activation: str, first: str, zennit_first) -> None:
    model, x, target = _mlp(activation), _x(), torch.tensor([0, 9, 4])
    ours = create_explainer("lrp", model, composite="epsilon", first_rule=first, context=CONTEXT)(x, target)
    composite = SpecialFirstLayerMapComposite(
        layer_map=[*layer_map_base(), (Linear, Epsilon(1e-6))], first_map=[(Linear, zennit_first)]
    )
    assert rel_max_diff(ours, _zennit(model, x, target, composite)) <= PARITY


@pytest.mark.parametrize("activation", ["sigmoid", "tanh"])
@pytest.mark.parametrize(
    ("composite", "first"),
    [("lrp0", "auto"), ("gamma", "auto"), ("alpha_beta", "auto"), ("zplus", "auto"), ("lrp0", "flat"),
     ("gamma", "wsquare")],
)  # fmt: skip
def test_conservation_without_biases(activation: str, composite: str, first: str) -> None:
    model, x = _mlp(activation, bias=False), _x(4)
    result = create_explainer(
        "lrp", model, composite=composite, first_rule=first, epsilon=0.0, stabilizer=1e-12, context=CONTEXT
    ).attribute(x, "predicted")
    logits = model(x).detach().max(1).values
    np.testing.assert_allclose(result.heatmap.flatten(1).sum(1).numpy(), logits.numpy(), rtol=1e-6, atol=0)
    assert np.allclose(result.stats["conservation"], 1.0, rtol=1e-6, atol=0)


@pytest.mark.parametrize("activation", ["sigmoid", "tanh"])
def test_saturating_lrp0_is_not_gradient_x_input(activation: str) -> None:
    """LRP passes relevance through sigmoid/tanh unchanged; the gradient multiplies by their slope."""
    model, x = _mlp(activation, bias=False), _x()
    lrp0 = create_explainer("lrp", model, composite="lrp0", stabilizer=1e-12)(x, 2)
    ixg = create_explainer("input_x_gradient", model)(x, 2)
    assert rel_max_diff(lrp0, ixg) > 1e-2
    # and with biases, epsilon absorbs: bias_absorbed reports it (target_score - relevance sum)
    biased = create_explainer("lrp", _mlp(activation), composite="epsilon").attribute(x, 2)
    absorbed = np.array(biased.stats["target_score"]) - np.array(biased.stats["relevance_sum"])
    np.testing.assert_allclose(biased.stats["bias_absorbed"], absorbed, rtol=1e-9, atol=1e-12)
