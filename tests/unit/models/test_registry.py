from __future__ import annotations

from collections import Counter

import pytest
import torch
from torch import nn

from xai_serve.errors import InvalidParameterError, UnknownModelError
from xai_serve.models import create_model, list_models, register_model

CASES = {
    "mlp": ({"input_shape": [1, 28, 28], "hidden": [32, 16]}, (2, 1, 28, 28)),
    "simplenet_310k": ({}, (2, 1, 28, 28)),
    "simplenet_5m": ({}, (2, 3, 32, 32)),
    "resnet20": ({}, (2, 3, 32, 32)),
    "resnet18": ({"num_classes": 10}, (2, 3, 64, 64)),
    "resnet34": ({"num_classes": 10}, (1, 3, 64, 64)),
    "resnet50": ({"num_classes": 10}, (1, 3, 64, 64)),
}


def test_list_models_has_the_contract_names() -> None:
    assert set(CASES) <= set(list_models())


def test_unknown_model_is_a_typed_error_listing_known_names() -> None:
    with pytest.raises(UnknownModelError, match="simplenet_310k"):
        create_model("no_such_net")


def test_bad_kwarg_is_an_invalid_parameter() -> None:
    with pytest.raises(InvalidParameterError, match="simplenet_310k"):
        create_model("simplenet_310k", no_such_kwarg=1)


def test_register_model_refuses_a_second_factory_for_a_name() -> None:
    with pytest.raises(ValueError, match="already registered"):
        register_model("mlp")(lambda: nn.Linear(1, 1))


@pytest.mark.parametrize("name", sorted(CASES))
def test_every_relu_is_distinct_non_inplace_and_called_once(name: str, relu_call_counts: Counter) -> None:
    kwargs, shape = CASES[name]
    torch.manual_seed(0)
    model = create_model(name, **kwargs).eval()
    x = torch.randn(shape)
    assert model(x).shape == (shape[0], 10)
    relus = [m for m in model.modules() if isinstance(m, nn.ReLU)]
    assert relus, name
    assert all(not m.inplace for m in relus)
    assert len({id(m) for m in relus}) == len(relus)
    counts = relu_call_counts(model, x)
    assert set(counts.values()) == {1}, {k: v for k, v in counts.items() if v != 1}
