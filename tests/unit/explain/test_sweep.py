"""Every registered method (from ``list_methods()``): shape, finiteness, hook hygiene, bit-identical model
outputs and state, batch consistency, errors that leave the model clean, frozen models under
``torch.inference_mode``. A new method is covered by registering it (its spec's ``test_params`` make
slow methods cheap)."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from xai_serve.errors import InvalidTargetError, XaiError
from xai_serve.explain import create_explainer, explain, list_methods, model_hooks

METHODS = sorted(list_methods())
SWEEP_PARAMS: dict[str, dict[str, object]] = {name: dict(s.test_params) for name, s in list_methods().items()}
MODELS = ["cnn", "resnet10"]
TARGET_FREE = {name: not s.targeted for name, s in list_methods().items()}


def _explode(module: nn.Module, inputs: object, output: object) -> None:
    raise RuntimeError("forward failed")


def _fingerprint(model: nn.Module) -> list[tuple[str, str, object]]:
    return [(name, type(m).__name__, getattr(m, "inplace", None)) for name, m in model.named_modules()]


def _assert_clean(model: nn.Module, x: torch.Tensor, state: dict, out: torch.Tensor, prints: list) -> None:
    assert model_hooks(model) == []
    assert _fingerprint(model) == prints
    for key, value in model.state_dict().items():
        assert torch.equal(value, state[key]), key
    with torch.no_grad():
        assert torch.equal(model(x), out)


@pytest.mark.parametrize("model_name", MODELS)
@pytest.mark.parametrize("method", METHODS)
def test_every_method(zoo, snapshot, model_name: str, method: str) -> None:
    model, x = zoo(model_name, batch=3)
    state, prints = snapshot(model), _fingerprint(model)
    with torch.no_grad():
        out = model(x)
    explainer = create_explainer(method, model, **SWEEP_PARAMS.get(method, {}))
    targets = [1, 4, 7]
    batch = explainer.attribute(x, targets)
    assert batch.heatmap.shape == x.shape
    assert batch.heatmap.dtype == x.dtype
    assert torch.isfinite(batch.heatmap).all()
    for values in batch.stats.values():
        assert len(values) == x.shape[0]
    _assert_clean(model, x, state, out, prints)
    for i in range(x.shape[0]):
        alone = explainer(x[i : i + 1], [targets[i]])
        assert torch.allclose(alone, batch.heatmap[i : i + 1], rtol=1e-9, atol=1e-12), f"sample {i}"
    _assert_clean(model, x, state, out, prints)


@pytest.mark.parametrize("method", METHODS)
def test_errors_leave_model_clean(zoo, snapshot, method: str) -> None:
    model, x = zoo("resnet10", batch=2)
    state, prints = snapshot(model), _fingerprint(model)
    with torch.no_grad():
        out = model(x)
    explainer = create_explainer(method, model, **SWEEP_PARAMS.get(method, {}))
    if not TARGET_FREE.get(method, False):
        with pytest.raises(InvalidTargetError, match="out of range"):
            explainer(x, 10)  # out of range for 10 classes
        _assert_clean(model, x, state, out, prints)

    def boom(output: torch.Tensor) -> torch.Tensor:
        raise RuntimeError("selector failed")

    if not TARGET_FREE.get(method, False):
        with pytest.raises((RuntimeError, XaiError), match=r"selector failed|class targets"):
            explainer(x, boom)
        _assert_clean(model, x, state, out, prints)
    # a failure inside the model's own forward, after the method has patched it
    layer = next(m for m in model.modules() if isinstance(m, nn.Conv2d))
    handle = layer.register_forward_hook(_explode)
    try:
        with pytest.raises((RuntimeError, XaiError), match="forward failed"):
            explainer(x, [1, 2])
    finally:
        handle.remove()
    _assert_clean(model, x, state, out, prints)


@pytest.mark.parametrize("method", METHODS)
def test_frozen_model_under_inference_mode(zoo, method: str) -> None:
    model, x = zoo("cnn", batch=2)
    params = SWEEP_PARAMS.get(method, {})
    expected = create_explainer(method, model, **params)(x, [0, 3])
    for p in model.parameters():
        p.requires_grad_(False)
    with torch.inference_mode():
        xi = x.clone()
        got = create_explainer(method, model, **params)(xi, [0, 3])
    assert torch.allclose(got, expected, rtol=1e-12, atol=1e-14)


def test_explain_shares_and_matches_single_calls(zoo) -> None:
    model, x = zoo("resnet10", batch=2)
    methods = {name: SWEEP_PARAMS.get(name, {}) for name in METHODS}
    together = explain(model, x, methods, "predicted")
    assert list(together) == METHODS
    for name in METHODS:
        alone = create_explainer(name, model, **methods[name])(x, "predicted")
        assert torch.allclose(together[name], alone, rtol=1e-10, atol=1e-13), name
    assert model_hooks(model) == []
