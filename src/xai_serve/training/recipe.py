"""Training recipes: small TOML files in top-level ``training/`` (one per experiment).

Layout (every key optional unless marked *required*)::

    name = "digits_simplenet"      # run name; default: the file stem -> runs/<name>/
    seed = 0                       # model init, shuffling, dropout
    device = "auto"                # auto | cpu | cuda
    epochs = 12                    # *required*
    batch_size = 64
    num_threads = 0                # torch.set_num_threads (0 = leave torch's default)

    [model]
    name = "simplenet_310k"        # *required*, a name from xai_serve.models.list_models()
    kwargs = { }                   # factory kwargs; num_classes / in_chans / input_shape are filled
                                   # in from the dataset when the factory takes them
    [data]
    name = "digits"                # *required*, a name from xai_serve.data.list_datasets()
    root = ""                      # local folder (mnist, cifar10, imagefolder); "" = $XAI_DATA_DIR or ./data
    channels = 0                   # 0 = the dataset's default
    split_seed = 0                 # seed of the train/val(/test) split
    val_fraction = 0.0             # 0 = the dataset's default
    augment = false                # cifar10 train: random crop + flip
    options = { }                  # dataset-specific options (pattern_digits: size, class_probs)

    [optimizer]
    name = "sgd"                   # sgd | adam | adadelta
    lr = 0.01
    momentum = 0.0                 # sgd
    weight_decay = 0.0
    betas = [0.9, 0.999]           # adam
    rho = 0.9                      # adadelta
    eps = 1e-6                     # adadelta / adam (0 = torch default)

    [schedule]
    name = "none"                  # none | step | multistep | cosine (stepped once per epoch)
    step_size = 10                 # step
    gamma = 0.1                    # step, multistep
    milestones = []                # multistep

    [loss]
    name = "cross_entropy"         # cross_entropy (one output) | gpt (General Pattern Theory: y, yg, ys)
    weights = [1.0, 1.0, 1.0]      # gpt: CE(y)*w0 + pixel CE(yg)*w1 + pixel CE(ys)*w2
    background_weight = 1.0        # gpt: class weight of channel 0 in the pixel CEs (paper: 0.01)
    stop_below = []                # gpt: stop once the losses (y, yg, ys) are all below these values...
    stop_window = 1                # ...as a running mean over this many iterations (1: per iteration)
    keep_best = "accuracy"         # best.pt: highest val accuracy | "running_loss": the paper's NICE2 rule
    best_discount = 0.95           # running_loss: the discount of the best running yg/ys losses

A malformed recipe raises :class:`~xai_serve.errors.RecipeError` naming the key (unknown key, wrong
type, missing required key, value out of range).
"""

from __future__ import annotations

import dataclasses
import json
import os
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from xai_serve.errors import RecipeError

OPTIMIZERS = ("sgd", "adam", "adadelta")
LOSSES = ("cross_entropy", "gpt")
KEEP_BEST = ("accuracy", "running_loss")
SCHEDULES = ("none", "step", "multistep", "cosine")
DEVICES = ("auto", "cpu", "cuda")


@dataclass
class ModelSection:
    name: str
    kwargs: dict[str, Any] = field(default_factory=dict)


@dataclass
class DataSection:
    name: str
    root: str = ""
    channels: int = 0
    split_seed: int = 0
    val_fraction: float = 0.0
    augment: bool = False
    options: dict[str, Any] = field(default_factory=dict)


@dataclass
class OptimizerSection:
    name: str = "sgd"
    lr: float = 0.01
    momentum: float = 0.0
    weight_decay: float = 0.0
    betas: list[float] = field(default_factory=lambda: [0.9, 0.999])
    rho: float = 0.9
    eps: float = 0.0


@dataclass
class ScheduleSection:
    name: str = "none"
    step_size: int = 10
    gamma: float = 0.1
    milestones: list[int] = field(default_factory=list)


@dataclass
class LossSection:
    name: str = "cross_entropy"
    weights: list[float] = field(default_factory=lambda: [1.0, 1.0, 1.0])
    background_weight: float = 1.0
    stop_below: list[float] = field(default_factory=list)
    stop_window: int = 1
    keep_best: str = "accuracy"
    best_discount: float = 0.95


@dataclass
class Recipe:
    name: str
    epochs: int
    model: ModelSection
    data: DataSection
    optimizer: OptimizerSection = field(default_factory=OptimizerSection)
    schedule: ScheduleSection = field(default_factory=ScheduleSection)
    loss: LossSection = field(default_factory=LossSection)
    seed: int = 0
    device: str = "auto"
    batch_size: int = 64
    num_threads: int = 0

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def to_toml(self) -> str:
        """The recipe with every default filled in, as TOML (what ``recipe.toml`` of a run holds)."""
        return dumps_toml(self.to_dict())


_SECTIONS: dict[str, type] = {
    cls.__name__: cls for cls in (ModelSection, DataSection, OptimizerSection, ScheduleSection, LossSection)
}


def _type_ok(value: Any, annotation: str) -> bool:
    if annotation == "bool":
        return isinstance(value, bool)
    if annotation == "int":
        return isinstance(value, int) and not isinstance(value, bool)
    if annotation == "float":
        return isinstance(value, int | float) and not isinstance(value, bool)
    if annotation == "str":
        return isinstance(value, str)
    if annotation == "list[float]":
        return isinstance(value, list) and all(_type_ok(v, "float") for v in value)
    if annotation == "list[int]":
        return isinstance(value, list) and all(_type_ok(v, "int") for v in value)
    if annotation == "dict[str, Any]":
        return isinstance(value, dict)
    raise AssertionError(annotation)


def _build(cls: type, data: dict[str, Any], prefix: str) -> Any:
    fields = {f.name: f for f in dataclasses.fields(cls)}
    for key in data:
        if key not in fields:
            raise RecipeError(f"unknown key {prefix + key!r} in recipe (known: {', '.join(fields)})")
    values: dict[str, Any] = {}
    for name, f in fields.items():
        dotted = f"{prefix}{name}"
        if name not in data:
            if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING:
                raise RecipeError(f"missing key {dotted!r} in recipe")
            continue
        value = data[name]
        annotation = str(f.type)
        if annotation in _SECTIONS:
            if not isinstance(value, dict):
                raise RecipeError(f"recipe key {dotted!r} must be a table ([{dotted}])")
            values[name] = _build(_SECTIONS[annotation], value, dotted + ".")
            continue
        if not _type_ok(value, annotation):
            raise RecipeError(
                f"recipe key {dotted!r} must be {annotation}, got {type(value).__name__} {value!r}"
            )
        values[name] = float(value) if annotation == "float" else value
    return cls(**values)


def _check(recipe: Recipe) -> None:
    def bad(key: str, why: str) -> RecipeError:
        return RecipeError(f"recipe key {key!r} {why}")

    if recipe.epochs < 1:
        raise bad("epochs", "must be >= 1")
    if recipe.batch_size < 1:
        raise bad("batch_size", "must be >= 1")
    if recipe.device not in DEVICES:
        raise bad("device", f"must be one of {', '.join(DEVICES)}")
    if recipe.optimizer.name not in OPTIMIZERS:
        raise bad("optimizer.name", f"must be one of {', '.join(OPTIMIZERS)}")
    if recipe.optimizer.lr <= 0:
        raise bad("optimizer.lr", "must be > 0")
    if len(recipe.optimizer.betas) != 2:
        raise bad("optimizer.betas", "must hold two numbers")
    if recipe.schedule.name not in SCHEDULES:
        raise bad("schedule.name", f"must be one of {', '.join(SCHEDULES)}")
    if not 0 <= recipe.data.val_fraction < 1:
        raise bad("data.val_fraction", "must be in [0, 1)")
    loss = recipe.loss
    if loss.name not in LOSSES:
        raise bad("loss.name", f"must be one of {', '.join(LOSSES)}")
    if len(loss.weights) != 3 or min(loss.weights) < 0:
        raise bad("loss.weights", "must hold three non-negative numbers (y, yg, ys)")
    if not 0 < loss.background_weight <= 1:
        raise bad("loss.background_weight", "must be in (0, 1]")
    if loss.stop_below and len(loss.stop_below) != 3:
        raise bad("loss.stop_below", "must be empty or hold three numbers (y, yg, ys)")
    if loss.stop_window < 1:
        raise bad("loss.stop_window", "must be >= 1")
    if loss.keep_best not in KEEP_BEST:
        raise bad("loss.keep_best", f"must be one of {', '.join(KEEP_BEST)}")
    if not 0 < loss.best_discount <= 1:
        raise bad("loss.best_discount", "must be in (0, 1]")
    if loss.name == "cross_entropy" and (loss.stop_below or loss.keep_best != "accuracy"):
        raise bad("loss.name", "'cross_entropy' takes no stop_below / keep_best (those are for 'gpt')")
    from xai_serve.data import list_datasets
    from xai_serve.models import list_models

    if recipe.model.name not in list_models():
        raise bad(
            "model.name", f"names an unknown model {recipe.model.name!r} (known: {', '.join(list_models())})"
        )
    if recipe.data.name not in list_datasets():
        raise bad(
            "data.name",
            f"names an unknown dataset {recipe.data.name!r} (known: {', '.join(list_datasets())})",
        )


def parse_recipe(data: dict[str, Any], default_name: str = "run") -> Recipe:
    """Validate a recipe mapping (as read from TOML) into a :class:`Recipe`."""
    data = dict(data)
    data.setdefault("name", default_name)
    recipe: Recipe = _build(Recipe, data, "")
    _check(recipe)
    return recipe


def load_recipe(path: str | os.PathLike[str]) -> Recipe:
    """Read and validate the TOML recipe at ``path`` (the run name defaults to the file stem)."""
    path = Path(path)
    if not path.is_file():
        raise RecipeError(f"recipe file not found: {path}")
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as exc:
        raise RecipeError(f"recipe {path} is not valid TOML: {exc}") from exc
    return parse_recipe(data, default_name=path.stem)


def _toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, str):
        return json.dumps(value)
    if isinstance(value, list):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{ " + ", ".join(f"{json.dumps(k)} = {_toml_value(v)}" for k, v in value.items()) + " }"
    raise TypeError(f"cannot write {type(value).__name__} to TOML")


def dumps_toml(data: dict[str, Any]) -> str:
    """Minimal TOML writer for recipes: scalars first, then one ``[table]`` per nested dict."""
    lines = [f"{k} = {_toml_value(v)}" for k, v in data.items() if not isinstance(v, dict)]
    for key, table in data.items():
        if isinstance(table, dict):
            lines += ["", f"[{key}]"]
            lines += [f"{k} = {_toml_value(v)}" for k, v in table.items()]
    return "\n".join(lines) + "\n"
