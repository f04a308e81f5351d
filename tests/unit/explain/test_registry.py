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
from xai_serve.explain import MethodSpec, ModelContext, create_explainer, explain_detailed, list_methods
from xai_serve.explain.targets import select

# in a fresh interpreter: the registry lists exactly the methods the package's modules define
_DISCOVERY = """
import importlib, json, pkgutil, sys
from xai_serve.explain import list_methods
from xai_serve.explain.registry import Explainer
import xai_serve.explain as package
listed = sorted(list_methods())
defined = set()
for info in pkgutil.iter_modules(package.__path__):
    module = importlib.import_module("xai_serve.explain." + info.name)
    for value in vars(module).values():
        if isinstance(value, type) and issubclass(value, Explainer) and "spec" in vars(value):
            defined.add(value.spec.name)
print(json.dumps([listed, sorted(defined)]))
"""


def test_methods_register_by_being_in_the_package() -> None:
    import json
    import subprocess
    import sys

    done = subprocess.run([sys.executable, "-c", _DISCOVERY], capture_output=True, text=True, check=True)
    listed, defined = json.loads(done.stdout.strip().splitlines()[-1])
    assert listed == defined and listed == sorted(list_methods())
    assert {"gradient", "lrp", "gradcam", "class_image"} <= set(listed)


def test_list_methods() -> None:
    methods = list_methods()
    for name, spec in methods.items():
        assert isinstance(spec, MethodSpec)
        assert spec.name == name
        assert spec.output in ("heatmap", "image")
        assert spec.doc
        for param in spec.params.values():
            assert param.help
        described = spec.describe()
        assert set(described["params"]) == set(spec.params)
        for pname, pspec in spec.params.items():
            d = described["params"][pname]
            assert d["type"] == pspec.type and d["default"] == pspec.default and d["doc"] == pspec.help
        for key in spec.test_params:
            assert key in spec.params
        if spec.iterations is not None:
            assert spec.iterations in spec.params
    assert methods["class_image"].output == "image"
    assert methods["lrp"].signed and not methods["gradcam"].signed
    assert "epsilon_plus_flat" in (methods["lrp"].params["composite"].choices or ())


def test_unknown_method() -> None:
    with pytest.raises(UnknownMethodError, match="nope"):
        create_explainer("nope", torch.nn.Linear(2, 2))


def test_params_from_strings(zoo) -> None:
    model, _ = zoo("cnn")
    context = ModelContext((0.1307,), (0.3081,))
    lrp = create_explainer("lrp", model, context=context, composite="epsilon", epsilon="0.25")
    assert lrp.params["epsilon"] == 0.25
    assert lrp.context == context and lrp.settings.low == ((0.0 - 0.1307) / 0.3081,)
    assert create_explainer("gradient", model, abs="true").params["abs"] is True
    assert create_explainer("gradcam", model, layer="3").choice.name == "3"


@pytest.mark.parametrize(
    ("method", "params", "name"),
    [
        ("lrp", {"composite": "bogus"}, "composite"),
        ("lrp", {"epsilon": "abc"}, "epsilon"),
        ("lrp", {"epsilon": -1.0}, "epsilon"),
        ("lrp", {"stabilizer": 0.0}, "stabilizer"),
        ("lrp", {"mean": "0.5"}, "mean"),
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
