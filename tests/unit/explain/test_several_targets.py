"""Several targets in one pass (``explain_targets``): equal to K single-target calls to 1e-6, per method
family (gradient, input x gradient, guided backprop, Grad-CAM, guided Grad-CAM, LRP), on a CNN and a
torchvision ResNet-18, alone and several methods together; methods outside the backprop family run on
repeated rows."""

from __future__ import annotations

import pytest
import torch

from xai_serve.explain import create_explainer, explain_detailed, explain_targets

TOL = 1e-6
CLASSES = [[3, 7, 1], [0, 3, 9]]
BACKPROP = ["gradient", "input_x_gradient", "guided_backprop", "gradcam", "guided_gradcam", "lrp"]


def _singles(model, x, method: str, params: dict) -> torch.Tensor:
    rows = []
    for b in range(x.shape[0]):
        for c in CLASSES[b]:
            rows.append(create_explainer(method, model, **params)(x[b : b + 1], [c])[0])
    return torch.stack(rows)


@pytest.mark.parametrize("model_name", ["cnn", "resnet18"])
@pytest.mark.parametrize("method", BACKPROP)
def test_one_pass_equals_single_target_calls(zoo, rel_diff, model_name: str, method: str) -> None:
    model, x = zoo(model_name, batch=2)
    got = explain_targets(model, x, [method], CLASSES)[method]
    ref = _singles(model, x, method, {})
    assert got.heatmap.shape == (6, *x.shape[1:])
    assert rel_diff(got.heatmap, ref) <= TOL
    assert got.classes == [c for row in CLASSES for c in row]
    assert got.logits is not None and got.logits.shape[0] == 6


@pytest.mark.parametrize("method", ["gradient", "input_x_gradient", "gradcam", "lrp"])
def test_one_pass_on_a_vision_transformer(zoo, rel_diff, method: str) -> None:
    """Token models too: Grad-CAM on the token grid, LRP with the attention rules (AttnLRP's gradient
    form: relevance = input x modified gradient, per target)."""
    model, x = zoo("vit", batch=2)
    got = explain_targets(model, x, [method], CLASSES)[method]
    ref = _singles(model, x, method, {})
    assert float(ref.abs().max()) > 0
    assert rel_diff(got.heatmap, ref) <= TOL


def test_several_methods_share_the_pass(zoo, rel_diff) -> None:
    model, x = zoo("resnet10", batch=2)
    methods = {"gradient": {}, "gradcam": {}, "lrp": {}, "occlusion": {"window": 8, "stride": 8}}
    got = explain_targets(model, x, methods, CLASSES)
    repeated = x.repeat_interleave(3, dim=0)
    ref = explain_detailed(model, repeated, methods, [c for row in CLASSES for c in row])
    for name in methods:
        assert rel_diff(got[name].heatmap, ref[name].heatmap) <= TOL, name
        for key, values in ref[name].stats.items():
            assert torch.allclose(torch.tensor(got[name].stats[key]), torch.tensor(values), rtol=1e-6), key


def test_bad_class_table_is_a_typed_error(zoo) -> None:
    from xai_serve.errors import InvalidParameterError, InvalidTargetError

    model, x = zoo("cnn", batch=2)
    with pytest.raises(InvalidParameterError):
        explain_targets(model, x, ["gradient"], [[1, 2]])
    with pytest.raises(InvalidTargetError):
        explain_targets(model, x, ["gradient"], [[1, 99], [2, 3]])
