"""Registry, typed parameters (strings from the wire), targets and input validation."""

from __future__ import annotations

import pytest
import torch

from xai_serve.errors import (
    InvalidInputError,
    InvalidParameterError,
    InvalidTargetError,
    UnknownMethodError,
)
from xai_serve.explain import MethodSpec, create_explainer, explain_detailed, list_methods
from xai_serve.explain.targets import select

EXPECTED = {
    "class_image",
    "deconvnet",
    "gradcam",
    "gradient",
    "guided_backprop",
    "guided_gradcam",
    "input_x_gradient",
    "layer_guided_backprop",
    "lrp",
}


def test_list_methods() -> None:
    methods = list_methods()
    assert set(methods) == EXPECTED
    for name, spec in methods.items():
        assert isinstance(spec, MethodSpec)
        assert spec.name == name
        assert spec.output in ("heatmap", "image")
        assert spec.doc
        for param in spec.params.values():
            assert param.help
    assert methods["class_image"].output == "image"
    assert methods["lrp"].signed and not methods["gradcam"].signed
    assert "epsilon_plus_flat" in (methods["lrp"].params["composite"].choices or ())


def test_unknown_method() -> None:
    with pytest.raises(UnknownMethodError, match="nope"):
        create_explainer("nope", torch.nn.Linear(2, 2))


def test_params_from_strings(zoo) -> None:
    model, _ = zoo("cnn")
    lrp = create_explainer("lrp", model, composite="epsilon", epsilon="0.25", mean="0.1307", std="[0.3081]")
    assert lrp.params["epsilon"] == 0.25
    assert lrp.params["mean"] == [0.1307] and lrp.params["std"] == [0.3081]
    assert create_explainer("gradient", model, abs="true").params["abs"] is True
    assert create_explainer("gradcam", model, layer="3").layer_name == "3"


@pytest.mark.parametrize(
    ("method", "params", "name"),
    [
        ("lrp", {"composite": "bogus"}, "composite"),
        ("lrp", {"epsilon": "abc"}, "epsilon"),
        ("lrp", {"epsilon": -1.0}, "epsilon"),
        ("lrp", {"std": "0,1"}, "std"),
        ("gradient", {"abs": "maybe"}, "abs"),
        ("gradient", {"colour": 1}, "colour"),
        ("class_image", {"iterations": "1.5"}, "iterations"),
    ],
)
def test_bad_params_name_the_param(zoo, method: str, params: dict, name: str) -> None:
    model, _ = zoo("cnn")
    with pytest.raises(InvalidParameterError, match=name):
        create_explainer(method, model, **params)


def test_targets() -> None:
    out = torch.tensor([[0.0, 2.0, 1.0], [3.0, 1.0, 0.0]], requires_grad=True)
    assert select(out, 1).scores.tolist() == [2.0, 1.0]
    assert select(out, "2").scores.tolist() == [1.0, 0.0]
    assert select(out, [2, 0]).scores.tolist() == [1.0, 3.0]
    assert select(out, torch.tensor([0, 1])).scores.tolist() == [0.0, 1.0]
    assert select(out, "predicted").classes.tolist() == [1, 0]
    assert select(out, lambda o: o[:, 0] - o[:, 1]).scores.tolist() == [-2.0, 2.0]
    for bad in (3, -1, [0], [0, 1, 2], "best", [0.5, 1], True, lambda o: o, torch.tensor([0.0, 1.0])):
        with pytest.raises(InvalidTargetError):
            select(out, bad)


def test_bad_inputs(zoo) -> None:
    model, x = zoo("cnn")
    explainer = create_explainer("gradient", model)
    for bad in (x.numpy(), x.long(), x[:0], x.clone().fill_(float("nan"))):
        with pytest.raises(InvalidInputError):
            explainer(bad, 0)


def test_explain_detailed_reports_logits_and_classes(zoo) -> None:
    model, x = zoo("cnn", batch=2)
    result = explain_detailed(model, x, {"gradient": {}, "lrp": {"composite": "epsilon"}}, "predicted")
    with torch.no_grad():
        logits = model(x)
    for attribution in result.values():
        assert attribution.classes == logits.argmax(1).tolist()
        assert torch.allclose(attribution.logits, logits)
    with pytest.raises(InvalidParameterError):
        explain_detailed(model, x, [], 0)
