"""LRP through ``nn.ConvTranspose2d`` (ResGPTNet's expansion path) against Zennit 0.5.1, closed forms and
conservation (float64).

Zennit's ``Convolution`` type includes the transposed convolutions, so its composites give them the conv
rules; its BatchNorm merge scales dimension 1 of their weight. Tolerances: Zennit parity <= 1e-5 of the
max |relevance|; LRP-0 == input x gradient <= 1e-6; bias-free conservation 1e-6 relative.
Zennit 0.5.1 keeps ``eps`` in the merged BatchNorm (see test_lrp.py): the parity model uses ``eps = 0``.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn
from zennit.canonizers import SequentialMergeBatchNorm
from zennit.composites import SpecialFirstLayerMapComposite, layer_map_base
from zennit.rules import Epsilon
from zennit.types import Linear

from tests.unit.explain.test_lrp import CONTEXT, FIRST, PARITY, ZENNIT, _zennit
from xai_serve.explain import Component, create_explainer, model_hooks
from xai_serve.models import create_model


def _random_bn(bn: nn.BatchNorm2d, gen: torch.Generator, eps: float) -> None:
    with torch.no_grad():
        c = bn.num_features
        bn.running_mean.copy_(torch.randn(c, generator=gen, dtype=torch.float64) * 0.2)
        bn.running_var.copy_(torch.rand(c, generator=gen, dtype=torch.float64) + 0.5)
        bn.weight.copy_(torch.rand(c, generator=gen, dtype=torch.float64) + 0.5)
        bn.bias.copy_(torch.randn(c, generator=gen, dtype=torch.float64) * 0.1)
    bn.eps = eps


def _model(bias: bool = True, groups: int = 1, bn_eps: float = 0.0) -> nn.Sequential:
    """A transposed convolution first (z^B / flat on it), then conv, then a strided transposed conv
    (with BatchNorm merged when ``bias``) and a dense head: (B, 2, 5, 5) -> (B, 5)."""
    gen = torch.Generator().manual_seed(0)
    torch.manual_seed(0)
    layers: list[nn.Module] = [
        nn.ConvTranspose2d(2, 4, 3, stride=2, padding=1, output_padding=1, bias=bias),  # 5 -> 10
    ]
    if bias:
        layers.append(nn.BatchNorm2d(4))
    layers += [
        nn.ReLU(),
        nn.Conv2d(4, 6, 3, padding=1, bias=bias),
        nn.ReLU(),
        nn.ConvTranspose2d(6, 4, 3, stride=2, groups=groups, bias=bias),  # 10 -> 21
    ]
    if bias:
        layers.append(nn.BatchNorm2d(4))
    layers += [nn.ReLU(), nn.Flatten(), nn.Linear(4 * 21 * 21, 5, bias=bias)]
    model = nn.Sequential(*layers).double().eval()
    for m in model.modules():
        if isinstance(m, nn.BatchNorm2d):
            _random_bn(m, gen, bn_eps)
    return model


def _input(batch: int = 2) -> torch.Tensor:
    return torch.randn(batch, 2, 5, 5, generator=torch.Generator().manual_seed(1), dtype=torch.float64)


@pytest.mark.parametrize("composite", list(ZENNIT))
def test_composites_match_zennit_on_conv_transpose(rel_diff, composite: str) -> None:
    model, x = _model(), _input()
    target = torch.tensor([1, 3])
    ours = create_explainer("lrp", model, composite=composite, context=CONTEXT).attribute(x, target)
    reference = _zennit(model, x, target, ZENNIT[composite]([SequentialMergeBatchNorm()]))
    assert reference.abs().max() > 0
    assert rel_diff(ours.heatmap, reference) <= PARITY
    assert model_hooks(model) == []


@pytest.mark.parametrize("first", list(FIRST))
def test_first_rule_on_a_conv_transpose_matches_zennit(rel_diff, first: str) -> None:
    model, x = _model(), _input()
    target = torch.tensor([0, 4])
    ours = create_explainer("lrp", model, composite="epsilon", first_rule=first, context=CONTEXT)(x, target)
    composite = SpecialFirstLayerMapComposite(
        layer_map=[*layer_map_base(), (Linear, Epsilon(1e-06))],
        first_map=[(Linear, FIRST[first])],
        canonizers=[SequentialMergeBatchNorm()],
    )
    assert rel_diff(ours, _zennit(model, x, target, composite)) <= PARITY


@pytest.mark.parametrize("groups", [1, 2])
def test_lrp0_equals_input_x_gradient_with_merged_batchnorm(rel_diff, groups: int) -> None:
    """Closed form (also for a grouped transposed conv, whose BatchNorm merge Zennit does not cover)."""
    model, x = _model(groups=groups, bn_eps=1e-5), _input(3)
    lrp = create_explainer("lrp", model, composite="lrp0")(x, "predicted")
    ixg = create_explainer("input_x_gradient", model)(x, "predicted")
    assert ixg.abs().max() > 0
    assert rel_diff(lrp, ixg) <= 1e-6


@pytest.mark.parametrize("composite", ["lrp0", "zplus", "gamma"])
def test_conservation_without_biases(composite: str) -> None:
    model, x = _model(bias=False), _input(4)
    result = create_explainer(
        "lrp", model, composite=composite, epsilon=0.0, stabilizer=1e-12, context=CONTEXT
    ).attribute(x, "predicted")
    logits = model(x).detach().max(1).values
    assert torch.allclose(result.heatmap.flatten(1).sum(1), logits, rtol=1e-6, atol=0)
    assert np.allclose(result.stats["conservation"], 1.0, rtol=1e-6, atol=0)


def _resgptnet() -> tuple[nn.Module, torch.Tensor]:
    torch.manual_seed(0)
    model = create_model("resgptnet_small", width=4).double().eval()
    gen = torch.Generator().manual_seed(2)
    for m in model.modules():  # non-trivial running statistics, so the merges matter
        if isinstance(m, nn.BatchNorm2d):
            _random_bn(m, gen, 1e-5)
    x = torch.rand(2, 1, 28, 28, generator=torch.Generator().manual_seed(3), dtype=torch.float64)
    return model, x


# the expansion path (eb*: ConvTranspose2d -> BatchNorm -> ReLU; cyg/cys: Conv2d -> ReLU ->
# ConvTranspose2d -> ReLU) is everything between the input and the yg / ys heads; both scalars are
# positive for both samples (the heads end in a ReLU: a zero output would explain nothing)
TARGETS = [Component("yg", 14, 9, "predicted"), Component("ys", 3, 20, 2)]


@pytest.mark.parametrize("target", TARGETS, ids=lambda t: t.output)
@pytest.mark.parametrize("composite", ["epsilon_plus_flat", "epsilon_gamma_box", "epsilon_alpha2_beta1"])
def test_lrp_on_resgptnet_component(target: Component, composite: str) -> None:
    model, x = _resgptnet()
    result = create_explainer("lrp", model, composite=composite).attribute(x, target)
    assert min(result.stats["target_score"]) > 0
    assert result.heatmap.shape == x.shape
    assert torch.isfinite(result.heatmap).all()
    assert result.heatmap.abs().flatten(1).max(1).values.min() > 0
    assert model_hooks(model) == []


@pytest.mark.parametrize("target", TARGETS, ids=lambda t: t.output)
def test_lrp0_equals_input_x_gradient_on_resgptnet(rel_diff, target: Component) -> None:
    """ResGPTNet is ReLU / linear / max-pool / residual-sum / cat / crop only: LRP-0 (Norm on the sums
    with a 1e-12 stabiliser) is input x gradient."""
    model, x = _resgptnet()
    acts = {type(m).__name__ for m in model.modules() if not any(True for _ in m.children())}
    assert acts <= {"Conv2d", "ConvTranspose2d", "BatchNorm2d", "ReLU", "MaxPool2d", "Sum", "Identity"}
    lrp = create_explainer("lrp", model, composite="lrp0", stabilizer=1e-12)(x, target)
    ixg = create_explainer("input_x_gradient", model)(x, target)
    assert ixg.abs().max() > 0
    assert rel_diff(lrp, ixg) <= 1e-6
