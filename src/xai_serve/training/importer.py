"""``xai import``: a foreign weights file -> a checkpoint directory (``model.json`` + ``best.pt``).

The model is a registry architecture, a torchvision classification architecture
(``torchvision.NAME``, :mod:`xai_serve.models.torchvision_zoo`) or a user's own ``nn.Module`` class in a
Python file (:mod:`xai_serve.models.user_model`, copied into the directory with its sha256 in the card).
The weights are read and matched by :mod:`xai_serve.models.import_weights` (wrappers, ``module.``
prefix, known layouts, refusals listing the differing keys). The directory is written under a temporary
name, checked by loading it back with :func:`~xai_serve.models.load_checkpoint` (``weights_only=True``)
and renamed into place: an error leaves nothing behind, and an existing directory is never touched.

Defaults by architecture (each overridable): ``resnet20`` / ``simplenet_5m`` take CIFAR-10 (3x32x32,
the ``cifar10`` dataset's normalisation and class names); ``simplenet_310k`` / ``mlp`` MNIST (1x28x28);
``resnet18/34/50`` and the torchvision family ImageNet (3x224x224, ImageNet mean/std, resize the shorter
side to 256 then centre-crop 224). A model file needs ``--input-size``.
"""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn

from xai_serve.atomic import atomic_torch_save, atomic_write_text
from xai_serve.data import cifar10, digits, mnist
from xai_serve.errors import CheckpointError, InvalidArgumentError, ModelFileError, UnknownModelError
from xai_serve.hashing import file_sha256
from xai_serve.models import ModelCard, list_models, load_checkpoint, model_parameters
from xai_serve.models.import_weights import match_state_dict, read_weights
from xai_serve.models.labels import read_labels
from xai_serve.models.multi_output import output_names
from xai_serve.models.torchvision_zoo import PREFIX as TORCHVISION
from xai_serve.models.torchvision_zoo import input_side, torchvision_classifiers
from xai_serve.models.user_model import build_user_model, import_model_file

IMAGENET_MEAN = [0.485, 0.456, 0.406]
IMAGENET_STD = [0.229, 0.224, 0.225]
NORMALISATIONS: dict[str, tuple[list[float], list[float]]] = {
    "imagenet": (IMAGENET_MEAN, IMAGENET_STD),
    "cifar10": (list(cifar10.MEAN), list(cifar10.STD)),
    "mnist": (list(mnist.MEAN), list(mnist.STD)),
}
IMPORT_RECORD = "import.json"


@dataclass(frozen=True)
class Preset:
    """What an architecture is usually trained on: dataset, input size, normalisation, class names."""

    dataset: str
    input_size: tuple[int, int, int]
    normalize: str
    labels: tuple[str, ...] = ()


CIFAR10 = Preset("cifar10", (3, 32, 32), "cifar10", tuple(cifar10.LABELS))
MNIST = Preset("mnist", (1, 28, 28), "mnist", tuple(digits.LABELS))
ARCH_PRESETS = {"resnet20": CIFAR10, "simplenet_5m": CIFAR10, "simplenet_310k": MNIST, "mlp": MNIST}


def _imagenet(side: int) -> Preset:
    return Preset("imagefolder", (3, side, side), "imagenet")


@dataclass
class ImportSpec:
    """The options of ``xai import`` (see :func:`import_weights`)."""

    weights: Path
    out: Path
    arch: str | None = None
    model_file: Path | None = None
    model_class: str | None = None
    kwargs: dict[str, Any] = field(default_factory=dict)
    num_classes: int | None = None
    input_size: tuple[int, int, int] | None = None
    normalize: str | None = None
    labels: Path | None = None
    dataset: str | None = None
    trust_pickle: bool = False


@dataclass
class ImportResult:
    out: Path
    card: ModelCard
    layout: str  # the known layout the file was in ("" for the model's own key names)
    tensors: int


def parse_input_size(text: str) -> tuple[int, int, int]:
    """``"3,224,224"`` -> ``(3, 224, 224)``."""
    parts = [p.strip() for p in text.replace("x", ",").split(",")]
    if len(parts) != 3 or not all(p.isdigit() and int(p) > 0 for p in parts):
        raise InvalidArgumentError(f"--input-size expects C,H,W (three positive integers), got {text!r}")
    c, h, w = (int(p) for p in parts)
    return c, h, w


def parse_normalize(text: str, channels: int) -> tuple[list[float], list[float]]:
    """A named normalisation (imagenet, cifar10, mnist, none) or ``MEAN/STD`` (comma-separated lists,
    one value per channel, or one value for all)."""
    if text == "none":
        return [0.0] * channels, [1.0] * channels
    if text in NORMALISATIONS:
        mean, std = NORMALISATIONS[text]
    else:
        left, sep, right = text.partition("/")
        try:
            mean = [float(v) for v in left.split(",")] if sep else []
            std = [float(v) for v in right.split(",")] if sep else []
        except ValueError:
            mean = std = []
        if not mean or not std:
            raise InvalidArgumentError(
                f"--normalize expects {', '.join([*NORMALISATIONS, 'none'])} or MEAN/STD "
                f"(e.g. 0.5,0.5,0.5/0.25,0.25,0.25), got {text!r}"
            )
        mean = mean * channels if len(mean) == 1 else mean
        std = std * channels if len(std) == 1 else std
    if len(mean) != channels or len(std) != channels:
        raise InvalidArgumentError(
            f"--normalize {text}: {len(mean)} mean / {len(std)} std values for a {channels}-channel input"
        )
    if any(s <= 0 for s in std):
        raise InvalidArgumentError(f"--normalize {text}: std values must be positive")
    return list(mean), list(std)


def known_architectures() -> list[str]:
    """Every ``--arch`` name: the registry's, then torchvision's classifiers (``torchvision.`` optional)."""
    return [*list_models(), *(TORCHVISION + n for n in torchvision_classifiers())]


def _resolve_arch(arch: str) -> tuple[str, Preset | None]:
    """The card's model name for ``--arch`` and its preset (None: no usual dataset)."""
    if arch in list_models():
        if arch in ARCH_PRESETS:
            return arch, ARCH_PRESETS[arch]
        return arch, _imagenet(224) if arch in ("resnet18", "resnet34", "resnet50") else None
    name = arch.removeprefix(TORCHVISION)
    if name in torchvision_classifiers():
        return TORCHVISION + name, _imagenet(input_side(name))
    raise UnknownModelError(
        f"unknown architecture {arch!r}: give a registry model ({', '.join(list_models())}) or a torchvision "
        "classification architecture (resnet101, vgg16, densenet121, mobilenet_v3_large, efficientnet_b0, "
        "convnext_tiny, vit_b_16, ...; `xai import --list-archs` lists them), or --model-file/--model-class"
    )


def _classifier_rows(model: nn.Module, state: dict[str, torch.Tensor]) -> int | None:
    """The class count of the file when it differs from ``model``'s (built with its default) in exactly one
    layer's output rows, the classifier's; None otherwise (the default stands, a mismatch is listed)."""
    own = model.state_dict()
    differing = [k for k in own if k in state and state[k].shape != own[k].shape]
    layers = {k.rpartition(".")[0] for k in differing}
    if len(layers) != 1:
        return None
    layer = layers.pop()
    weight, mine = state.get(f"{layer}.weight"), own.get(f"{layer}.weight")
    if weight is None or mine is None or weight.dim() < 2 or weight.shape[1:] != mine.shape[1:]:
        return None
    return int(weight.shape[0])


def _outputs(model: nn.Module, input_size: Sequence[int], source: str) -> int:
    """Run one zero image through ``model``; the class count of its (first) output."""
    try:
        with torch.no_grad():
            y = model.eval()(torch.zeros(1, *input_size))
    except Exception as exc:
        raise InvalidArgumentError(
            f"{source} does not run on a {'x'.join(map(str, input_size))} input: {type(exc).__name__}: {exc}"
        ) from None
    if isinstance(y, tuple | list) and y:
        y = y[0]
    if not isinstance(y, torch.Tensor) or y.dim() != 2 or y.shape[0] != 1:
        raise InvalidArgumentError(f"{source} must return class scores of shape [batch, classes]")
    return int(y.shape[1])


def _init_parameters(cls: Any) -> set[str]:
    """Keyword names a class's constructor takes (none when it is not a class or has no signature)."""
    import inspect

    if not isinstance(cls, type):
        return set()
    try:
        return set(inspect.signature(cls).parameters)
    except (TypeError, ValueError):
        return set()


def _build(
    spec: ImportSpec, state: dict[str, torch.Tensor]
) -> tuple[nn.Module, str, dict[str, Any], Preset | None]:
    """The randomly initialised model, its card name, its kwargs and its preset."""
    if spec.model_file is not None:
        if spec.arch is not None:
            raise InvalidArgumentError("give --arch or --model-file/--model-class, not both")
        if not spec.model_class:
            raise InvalidArgumentError("--model-file needs --model-class (the nn.Module class in it)")
        module = import_model_file(spec.model_file)
        kwargs = dict(spec.kwargs)
        if spec.num_classes is not None and "num_classes" in _init_parameters(
            getattr(module, spec.model_class, None)
        ):
            kwargs.setdefault("num_classes", spec.num_classes)
        return (
            build_user_model(module, spec.model_class, kwargs, spec.model_file.name),
            spec.model_class,
            kwargs,
            None,
        )
    if spec.model_class:
        raise InvalidArgumentError("--model-class needs --model-file")
    if spec.arch is None:
        raise InvalidArgumentError("give --arch NAME or --model-file FILE.py --model-class NAME")
    from xai_serve.models import create_model

    name, preset = _resolve_arch(spec.arch)
    kwargs = dict(spec.kwargs)
    params = model_parameters(name)
    if "weights" in kwargs:
        raise InvalidArgumentError(
            "--kwargs must not name weights: the weights file is the positional argument"
        )
    channels = spec.input_size[0] if spec.input_size else (preset.input_size[0] if preset else None)
    if channels is not None and "in_chans" in params:
        kwargs.setdefault("in_chans", channels)
    size = spec.input_size or (preset.input_size if preset else None)
    if size is not None and "input_shape" in params and "in_features" not in kwargs:
        kwargs.setdefault("input_shape", list(size))  # a model sized by its input (mlp)
    if "num_classes" in params or name.startswith(TORCHVISION):
        classes = spec.num_classes
        if classes is None:  # the file's classifier says; the labels are checked against it later
            probe = create_model(name, **kwargs)
            classes = _classifier_rows(probe, state)
            if classes is None:  # the file fits the default class count (or differs elsewhere: listed)
                return probe, name, kwargs, preset
        if classes is not None:
            kwargs["num_classes"] = classes
    return create_model(name, **kwargs), name, kwargs, preset


def _card(
    spec: ImportSpec, name: str, kwargs: dict[str, Any], preset: Preset | None, classes: int
) -> ModelCard:
    input_size = spec.input_size or (preset.input_size if preset else None)
    if input_size is None:
        raise InvalidArgumentError(f"--input-size C,H,W is needed for {name} (no usual input size known)")
    normalize = spec.normalize or (preset.normalize if preset else "none")
    mean, std = parse_normalize(normalize, input_size[0])
    resize = (
        round(input_size[1] * 256 / 224) if normalize == "imagenet" and input_size[1] == input_size[2] else 0
    )
    if spec.labels is not None:
        labels = read_labels(spec.labels)
        if len(labels) != classes:
            raise InvalidArgumentError(
                f"{spec.labels} has {len(labels)} labels but the model has {classes} classes"
            )
    elif preset is not None and len(preset.labels) == classes:
        labels = list(preset.labels)
    else:
        labels = [f"class_{i}" for i in range(classes)]
    dataset = spec.dataset or (preset.dataset if preset else "imagefolder")
    return ModelCard(
        model=name,
        model_kwargs=kwargs,
        dataset=dataset,
        input_shape=list(input_size),
        mean=mean,
        std=std,
        labels=labels,
        num_classes=classes,
        resize=resize,
    )


def _write(spec: ImportSpec, tmp: Path, card: ModelCard, state: dict[str, torch.Tensor], layout: str) -> None:
    if spec.model_file is not None:
        target = tmp / spec.model_file.name
        shutil.copyfile(spec.model_file, target)
        card.model_file = target.name
        card.model_file_sha256 = file_sha256(target)
    atomic_torch_save(tmp / "best.pt", {k: v.detach().clone().contiguous() for k, v in state.items()})
    card.save(tmp / "model.json")
    record = {
        "source": str(spec.weights.resolve()),
        "source_sha256": file_sha256(spec.weights),
        "layout": layout or "as saved",
        "tensors": len(state),
    }
    atomic_write_text(tmp / IMPORT_RECORD, json.dumps(record, indent=2) + "\n")


def import_weights(spec: ImportSpec) -> ImportResult:
    """Write the checkpoint directory ``spec.out`` from ``spec.weights`` (see the module docstring)."""
    out = Path(spec.out)
    if out.exists():
        raise CheckpointError(f"{out} already exists; choose a new --out (nothing was written)")
    if spec.model_file is not None and not Path(spec.model_file).is_file():
        raise ModelFileError(f"model file not found: {spec.model_file}")
    user_classes = None
    if spec.model_file is not None and spec.trust_pickle:  # a pickled model of the user's own class
        module = import_model_file(spec.model_file)
        user_classes = {n: v for n, v in vars(module).items() if isinstance(v, type)}
    state = read_weights(
        spec.weights,
        trust_pickle=spec.trust_pickle,
        user_classes=user_classes,
        user_module=spec.model_file.stem if spec.model_file is not None else "",
    )
    model, name, kwargs, preset = _build(spec, state)
    state, layout = match_state_dict(model, state, name, source=str(spec.weights))
    model.load_state_dict(state)
    input_size = spec.input_size or (preset.input_size if preset else None)
    if input_size is None:
        raise InvalidArgumentError(f"--input-size C,H,W is needed for {name} (no usual input size known)")
    classes = _outputs(model, input_size, name)
    if spec.num_classes is not None and spec.num_classes != classes:
        raise InvalidArgumentError(
            f"--num-classes {spec.num_classes} but the model outputs {classes} classes"
        )
    card = _card(spec, name, kwargs, preset, classes)
    card.outputs = list(output_names(model))  # a model returning several outputs declares their names
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.parent / f".{out.name}.importing-{os.getpid()}"
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir()
    try:
        _write(spec, tmp, card, state, layout)
        load_checkpoint(tmp)  # what every command will do: it must load, weights_only=True
        if out.exists():
            raise CheckpointError(f"{out} appeared while importing; nothing was written")
        tmp.rename(out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return ImportResult(out, card, layout, len(state))
