from __future__ import annotations

import re
from pathlib import Path

import pytest

from xai_serve.errors import RecipeError
from xai_serve.training import load_recipe, parse_recipe

RECIPES = Path(__file__).resolve().parents[3] / "training"
SHIPPED = [
    "digits_simplenet",
    "digits_mlp_relu",
    "digits_mlp_sigmoid",
    "digits_vit",
    "mnist_simplenet",
    "cifar10_simplenet5m",
    "cifar10_resnet20",
]

GOOD = """
epochs = 3
[model]
name = "mlp"
[data]
name = "digits"
"""


@pytest.mark.parametrize("name", SHIPPED)
def test_shipped_recipes_parse_and_round_trip(name: str, tmp_path: Path) -> None:
    recipe = load_recipe(RECIPES / f"{name}.toml")
    assert recipe.name == name
    (tmp_path / "again.toml").write_text(recipe.to_toml())
    assert load_recipe(tmp_path / "again.toml") == recipe


def test_defaults_and_name_from_file_stem(tmp_path: Path) -> None:
    path = tmp_path / "my_run.toml"
    path.write_text(GOOD)
    recipe = load_recipe(path)
    assert recipe.name == "my_run" and recipe.seed == 0 and recipe.device == "auto"
    assert recipe.optimizer.name == "sgd" and recipe.schedule.name == "none"


@pytest.mark.parametrize(
    ("text", "key"),
    [
        ("lerning_rate = 0.1\n" + GOOD, "'lerning_rate'"),  # unknown top-level key
        (GOOD + "[optimizer]\nlr = 0.1\nmomentun = 0.9\n", "'optimizer.momentun'"),  # unknown nested key
        (GOOD.replace("epochs = 3", 'epochs = "3"'), "'epochs'"),  # wrong type
        (GOOD + "[optimizer]\nlr = true\n", "'optimizer.lr'"),  # bool is not a number
        (GOOD.replace("epochs = 3", ""), "'epochs'"),  # missing key
        (GOOD.replace('name = "mlp"', ""), "'model.name'"),  # missing nested key
        (GOOD + '[optimizer]\nname = "rmsprop"\n', "'optimizer.name'"),  # bad choice
        (GOOD + '[schedule]\nname = "exp"\n', "'schedule.name'"),
        (GOOD.replace('name = "mlp"', 'name = "nonet"'), "'model.name'"),  # unknown model
        (GOOD.replace('name = "digits"', 'name = "svhn"'), "'data.name'"),  # unknown dataset
        ("model = 3\n" + GOOD.replace('[model]\nname = "mlp"\n', ""), "'model'"),  # not a table
        (GOOD.replace("epochs = 3", "epochs = 0"), "'epochs'"),
    ],
)
def test_malformed_recipe_names_the_key(tmp_path: Path, text: str, key: str) -> None:
    path = tmp_path / "bad.toml"
    path.write_text(text)
    with pytest.raises(RecipeError, match=re.escape(key)):
        load_recipe(path)


def test_invalid_toml_and_missing_file(tmp_path: Path) -> None:
    (tmp_path / "broken.toml").write_text("epochs = = 3\n")
    with pytest.raises(RecipeError, match="not valid TOML"):
        load_recipe(tmp_path / "broken.toml")
    with pytest.raises(RecipeError, match="not found"):
        load_recipe(tmp_path / "absent.toml")


def test_parse_recipe_rejects_float_for_int() -> None:
    with pytest.raises(RecipeError, match="'batch_size'"):
        parse_recipe({"epochs": 1, "batch_size": 6.5, "model": {"name": "mlp"}, "data": {"name": "digits"}})
