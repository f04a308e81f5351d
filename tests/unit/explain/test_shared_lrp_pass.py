"""LRP in the gradient methods' pass (issue 14): ``explain`` with lrp beside gradient-family methods
runs ONE forward pass and answers what each method answers on its own; where the shared pass cannot
(a requested layer merged with its BatchNorm by LRP, an operation LRP passes through written
functionally), each method runs separately with the same answers. Float64, random weights.

Tolerances: LRP's forward merges BatchNorm into the linear layers (the same function up to rounding),
so the gradient methods' maps over it equal their own passes to 1e-10 of the largest value; LRP's
relevance is computed by the same rules over the same forward: equal to 1e-12.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import pytest
import torch
from torch import nn

from xai_serve.explain import create_explainer, explain_detailed, model_hooks
from xai_serve.explain.backprop import BackpropRequest, run_backprop
from xai_serve.explain.passes import SharedPassUnavailable

from .conftest import randomise_batchnorm
from .test_functional import _pair

FOUR = ["gradient", "guided_backprop", "gradcam", "lrp"]


def _alone(model: nn.Module, x: torch.Tensor, methods: dict, target) -> dict:
    return {
        name: create_explainer(name, model, **params).attribute(x, target) for name, params in methods.items()
    }


@contextlib.contextmanager
def _forward_calls(model: nn.Module) -> Iterator[list[int]]:
    """A counter of the calls of the model's first leaf module (one per forward pass)."""
    first = next(m for m in model.modules() if not any(True for _ in m.children()))
    calls = [0]
    handle = first.register_forward_hook(lambda *_: calls.__setitem__(0, calls[0] + 1))
    try:
        yield calls
    finally:
        handle.remove()


def _assert_same(got: dict, expected: dict, lrp_tol: float = 1e-12, grad_tol: float = 1e-10) -> None:
    for name, want in expected.items():
        tol = lrp_tol if name == "lrp" else grad_tol
        scale = float(want.heatmap.abs().max())
        assert float((got[name].heatmap - want.heatmap).abs().max()) <= tol * scale, name
        assert got[name].classes == want.classes, name
        torch.testing.assert_close(got[name].logits, want.logits, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize(
    ("model_name", "layer", "composite"),
    [
        ("resnet18_32", "layer4", "epsilon_plus_flat"),
        ("resnet18_32", "layer3", "epsilon_gamma_box"),
        ("simplenet", "features.49", "epsilon_alpha2_beta1"),
        ("cnn", None, "epsilon"),
    ],
)
def test_one_forward_and_the_same_answers(zoo, model_name: str, layer: str | None, composite: str) -> None:
    model, x = zoo(model_name, batch=2)
    randomise_batchnorm(model)
    methods = {
        "gradient": {},
        "guided_backprop": {},
        "gradcam": {} if layer is None else {"layer": layer},
        "lrp": {"composite": composite},
    }
    target = torch.tensor([1, 6])
    expected = _alone(model, x, methods, target)
    with _forward_calls(model) as calls:
        got = explain_detailed(model, x, methods, target)
    assert calls[0] == 1, "LRP and the gradient methods must share one forward pass"
    _assert_same(got, expected)
    assert got["lrp"].stats["target_score"] == pytest.approx(expected["lrp"].stats["target_score"], rel=1e-12)
    assert model_hooks(model) == []


def test_predicted_target_and_deconvnet(zoo) -> None:
    model, x = zoo("resnet18_32", batch=3)
    randomise_batchnorm(model, seed=1)
    methods = {"deconvnet": {}, "input_x_gradient": {}, "lrp": {}}
    expected = _alone(model, x, methods, "predicted")
    with _forward_calls(model) as calls:
        got = explain_detailed(model, x, methods, "predicted")
    assert calls[0] == 1
    _assert_same(got, expected)


def test_merged_layer_runs_separately_with_the_same_answers(zoo) -> None:
    """Grad-CAM on a conv whose BatchNorm LRP merges needs the conv's own output: separate passes."""
    model, x = zoo("resnet18_32", batch=2)
    randomise_batchnorm(model, seed=2)
    methods = {"gradcam": {"layer": "layer4.1.conv2"}, "lrp": {}}
    with pytest.raises(SharedPassUnavailable):
        request = BackpropRequest(layers={"layer4.1.conv2": model.get_submodule("layer4.1.conv2")})
        request.extension = create_explainer("lrp", model).engine()
        run_backprop(model, x, torch.tensor([0, 1]), request)
    expected = _alone(model, x, methods, torch.tensor([0, 1]))
    with _forward_calls(model) as calls:
        got = explain_detailed(model, x, methods, torch.tensor([0, 1]))
    assert calls[0] >= 2  # two passes
    _assert_same(got, expected, grad_tol=0.0, lrp_tol=0.0)


@pytest.mark.parametrize("act", ["relu", "tanh"])
def test_functional_model(act: str) -> None:
    """Functional ReLUs get each method's rule in the shared pass (guided: the guided ReLU, LRP: its
    own gradient); the residual ``+=`` gets Norm for LRP and its gradient for the others; a functional
    tanh, which LRP passes through, sends the batch to separate passes. Answers equal the module
    model's either way."""
    modular, functional, x = _pair(act, seed=5)
    methods = {"gradient": {}, "guided_backprop": {}, "lrp": {"composite": "epsilon_plus_flat"}}
    expected = _alone(modular, x, methods, 2)
    _alone(functional, x, {"lrp": {}}, 2)  # LRP's one-time graph probe of this model, not counted below
    with _forward_calls(functional) as calls:
        got = explain_detailed(functional, x, methods, 2)
    assert calls[0] == (1 if act == "relu" else 3)  # tanh: the shared attempt, then one pass each
    _assert_same(got, expected, lrp_tol=1e-10)
    got_modular = explain_detailed(modular, x, methods, 2)
    _assert_same(got_modular, expected)
    assert model_hooks(functional) == [] and model_hooks(modular) == []


def test_module_activation_gradient(zoo) -> None:
    """An activation module LRP passes through (Tanh) has its true derivative in the gradient modes."""
    torch.manual_seed(6)
    model = nn.Sequential(nn.Linear(8, 6), nn.Tanh(), nn.BatchNorm1d(6), nn.Linear(6, 3)).double().eval()
    randomise_batchnorm(model, seed=6)
    x = torch.randn(4, 8, dtype=torch.float64)
    methods = {"gradient": {}, "lrp": {"composite": "epsilon"}}
    expected = _alone(model, x, methods, 1)
    with _forward_calls(model) as calls:
        got = explain_detailed(model, x, methods, 1)
    assert calls[0] == 1
    _assert_same(got, expected)


def test_lrp_error_leaves_the_gradient_methods_answering(zoo) -> None:
    """LRP refuses a model in training mode: the error propagates from the shared pass (only
    SharedPassUnavailable sends the methods to separate passes); the gradient methods alone answer."""
    model, x = zoo("simplenet", batch=2)
    model.train()
    with _forward_calls(model) as calls, pytest.raises(Exception, match="training mode"):
        explain_detailed(model, x, ["gradient", "lrp"], 0)
    assert calls[0] == 0  # raised by the shared pass itself: no separate gradient pass ran
    model.eval()
    got = explain_detailed(model, x, ["gradient"], 0)
    assert torch.isfinite(got["gradient"].heatmap).all()
