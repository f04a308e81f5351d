"""No silent fallbacks (issue 16): models written with functional calls get the method's rules applied
to those calls (maps equal to the same model written with modules) or a typed refusal naming the call
site; never a different method's map. Float64, random weights."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from xai_serve.errors import UnsupportedOperationError
from xai_serve.explain import create_explainer, explain, model_hooks
from xai_serve.models.layers import Sum


class ModuleNet(nn.Module):
    """conv-ReLU, residual conv (+ ReLU), global average pool, Linear-act-Linear; all with modules."""

    def __init__(self, act: str = "relu") -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(1, 4, 3, padding=1)
        self.relu1 = nn.ReLU()
        self.conv2 = nn.Conv2d(4, 4, 3, padding=1)
        self.add = Sum()
        self.relu3 = nn.ReLU()
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.flat = nn.Flatten()
        self.fc1 = nn.Linear(4, 6)
        self.act = {"relu": nn.ReLU, "sigmoid": nn.Sigmoid, "tanh": nn.Tanh}[act]()
        self.fc2 = nn.Linear(6, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        a = self.relu1(self.conv1(x))
        h = self.relu3(self.add(self.conv2(a), a))
        return self.fc2(self.act(self.fc1(self.flat(self.pool(h)))))


class FunctionalNet(ModuleNet):
    """The same parameters; ReLUs, the residual addition, pooling and activation written functionally."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        a = F.relu(self.conv1(x))
        b = self.conv2(a)
        b += a  # in-place residual addition outside any module
        h = b.relu()
        h = h.mean((2, 3))
        act = {"ReLU": torch.relu, "Sigmoid": torch.sigmoid, "Tanh": torch.tanh}[type(self.act).__name__]
        return self.fc2(act(self.fc1(h)))


class ReluLeaf(nn.Module):
    """A user-defined leaf module whose forward calls torch.relu (not an nn.ReLU)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.relu(x)


def _pair(act: str = "relu", seed: int = 0) -> tuple[nn.Module, nn.Module, torch.Tensor]:
    torch.manual_seed(seed)
    modular = ModuleNet(act).double().eval()
    functional = FunctionalNet(act).double().eval()
    functional.load_state_dict(modular.state_dict())
    x = torch.randn(3, 1, 6, 6, dtype=torch.float64)
    return modular, functional, x


@pytest.mark.parametrize("method", ["guided_backprop", "deconvnet"])
def test_functional_relus_get_the_rule(method: str) -> None:
    modular, functional, x = _pair()
    expected = create_explainer(method, modular)(x, 1)
    got = create_explainer(method, functional)(x, 1)
    torch.testing.assert_close(got, expected, rtol=1e-12, atol=1e-12)
    plain = create_explainer("gradient", functional)(x, 1)
    assert not torch.allclose(got, plain), "the functional model must not get the plain gradient"
    assert model_hooks(functional) == []


def test_shared_pass_applies_the_rule_to_functional_relus() -> None:
    modular, functional, x = _pair(seed=1)
    methods = ["gradient", "guided_backprop", "deconvnet"]
    expected = explain(modular, x, methods, "predicted")
    got = explain(functional, x, methods, "predicted")
    for name in methods:
        torch.testing.assert_close(got[name], expected[name], rtol=1e-12, atol=1e-12)


def test_user_leaf_module_with_functional_relu() -> None:
    torch.manual_seed(2)
    modular = nn.Sequential(nn.Linear(5, 7), nn.ReLU(), nn.Linear(7, 3)).double()
    custom = nn.Sequential(nn.Linear(5, 7), ReluLeaf(), nn.Linear(7, 3)).double()
    custom.load_state_dict(modular.state_dict())
    x = torch.randn(4, 5, dtype=torch.float64)
    expected = create_explainer("guided_backprop", modular)(x, 0)
    torch.testing.assert_close(create_explainer("guided_backprop", custom)(x, 0), expected)


def test_layer_guided_backprop_functional() -> None:
    modular, functional, x = _pair(seed=3)
    expected = create_explainer("layer_guided_backprop", modular, layer="conv2", filter=1)(x)
    got = create_explainer("layer_guided_backprop", functional, layer="conv2", filter=1)(x)
    torch.testing.assert_close(got, expected, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("act", ["relu", "sigmoid", "tanh"])
@pytest.mark.parametrize("composite", ["epsilon_plus_flat", "lrp0", "gamma"])
def test_lrp_functional_equals_modules(act: str, composite: str) -> None:
    modular, functional, x = _pair(act, seed=4)
    lrp_m = create_explainer("lrp", modular, composite=composite).attribute(x, 2)
    lrp_f = create_explainer("lrp", functional, composite=composite).attribute(x, 2)
    torch.testing.assert_close(lrp_f.heatmap, lrp_m.heatmap, rtol=1e-10, atol=1e-12)
    assert lrp_f.stats["bias_absorbed"] == pytest.approx(lrp_m.stats["bias_absorbed"], abs=1e-10)
    if composite == "lrp0" and act == "relu":  # closed form: LRP-0 on a ReLU network = gradient x input
        exact = create_explainer("lrp", functional, composite="lrp0", stabilizer=1e-300)(x, 2)
        grad_x_input = create_explainer("input_x_gradient", functional)(x, 2)
        torch.testing.assert_close(exact, grad_x_input, rtol=1e-9, atol=1e-12)
    assert model_hooks(functional) == []


class Gated(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.a = nn.Linear(4, 4)
        self.b = nn.Linear(4, 4)
        self.out = nn.Linear(4, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.out(self.a(x) * torch.sigmoid(self.b(x)))


class RawLinear(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.inner = nn.Linear(4, 4)
        self.register_buffer("w", torch.randn(2, 4))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.linear(self.inner(x), self.w)


@pytest.mark.parametrize(("model", "op"), [(Gated(), "mul"), (RawLinear(), "linear")])
def test_lrp_refuses_unseen_operations_naming_the_call_site(model: nn.Module, op: str) -> None:
    model = model.double().eval()
    x = torch.randn(2, 4, dtype=torch.float64)
    with pytest.raises(UnsupportedOperationError) as info:
        create_explainer("lrp", model, composite="lrp0")(x, 0)
    message = str(info.value)
    assert f"{op!r}" in message and "test_functional.py:" in message and "forward" in message
    assert model_hooks(model) == []
    # guided backprop defines every non-ReLU operation by its gradient: it answers
    assert torch.isfinite(create_explainer("guided_backprop", model)(x, 0)).all()
