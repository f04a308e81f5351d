"""The rule kernels' shortcuts give what the plain formulas give (float64), and the non-negativity test
that picks the one-convolution paths is only skipped where it cannot be wrong."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from xai_serve.explain.lrp_engine import _RuleLayer
from xai_serve.explain.passes import ModeSwitch, ReluMode, RuleFunction
from xai_serve.explain.rules import Flat, LinearOp, ZBox, _nonneg


def _relevance(layer: nn.Module, rule: object, a: torch.Tensor, r: torch.Tensor) -> torch.Tensor:
    op = LinearOp("layer", layer)
    params = rule.prepare(op, layer.weight.detach(), None if layer.bias is None else layer.bias.detach())  # type: ignore[attr-defined]
    x = a.clone().requires_grad_(True)
    out = RuleFunction.apply(x, _RuleLayer(op, rule, params, ModeSwitch(ReluMode.RULES)))  # type: ignore[arg-type]
    return torch.autograd.grad(out, x, r)[0]


LAYERS = [
    lambda: nn.Conv2d(3, 5, 3, stride=2, padding=1, dilation=1),
    lambda: nn.Conv2d(3, 4, (3, 2), stride=(1, 2), padding=(2, 0), dilation=2),
    lambda: nn.Conv1d(2, 3, 5, stride=2, padding=2),
    lambda: nn.Linear(12, 7),
]


def _input(layer: nn.Module) -> torch.Tensor:
    if isinstance(layer, nn.Linear):
        return torch.rand(2, 12, dtype=torch.float64) * 4 - 2
    if isinstance(layer, nn.Conv1d):
        return torch.rand(2, 2, 11, dtype=torch.float64) * 4 - 2
    return torch.rand(2, 3, 9, 10, dtype=torch.float64) * 4 - 2


@pytest.mark.parametrize("make", LAYERS)
def test_flat_from_the_channel_sum_equals_the_all_ones_layer(make) -> None:
    torch.manual_seed(0)
    layer = make().double()
    a = _input(layer)
    r = torch.randn_like(layer(a))
    ours = _relevance(layer, Flat(), a, r)
    op = LinearOp("layer", layer)
    ones = torch.ones_like(layer.weight)
    den = op.forward(torch.ones_like(a[:1]), ones, None) + 1e-6
    expected = op.vjp(r / den, ones, a.shape)
    assert ours.is_contiguous()
    assert torch.allclose(ours, expected, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("make", LAYERS)
def test_zbox_stacked_adjoint_equals_the_two_adjoints(make) -> None:
    torch.manual_seed(1)
    layer = make().double()
    a = _input(layer)
    r = torch.randn_like(layer(a))
    low, high = -2.0, 2.0
    ours = _relevance(layer, ZBox((low,), (high,)), a, r)
    w = layer.weight.detach()
    wp, wn = w.clamp(min=0), w.clamp(max=0)
    op = LinearOp("layer", layer)
    lo, hi = torch.full_like(a, low), torch.full_like(a, high)
    z = op.forward(a, w, layer.bias.detach()) - op.forward(lo, wp, layer.bias.detach().clamp(min=0))
    z = z - op.forward(hi, wn, layer.bias.detach().clamp(max=0))
    s = r / (z + torch.where(z >= 0, 1e-6, -1e-6))
    expected = a * op.vjp(s, w, a.shape) - lo * op.vjp(s, wp, a.shape) - hi * op.vjp(s, wn, a.shape)
    assert torch.allclose(ours, expected, rtol=1e-10, atol=1e-10)


def test_nonneg_is_free_only_for_an_untouched_relu_output() -> None:
    x = torch.randn(2, 3, 4, 4, requires_grad=True)
    a = torch.relu(x)
    assert _nonneg(a)
    with torch.no_grad():
        a.sub_(1.0)  # changed in place: the autograd node still says ReLU, the version does not
    assert not _nonneg(a)
    assert not _nonneg(x * 1.0)  # not a ReLU output: the values are checked
    assert _nonneg(x.detach().abs())
