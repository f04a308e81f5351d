"""A dataset split as a given model sees it: its channels, input size, normalisation and preprocessing.

Evaluation, certification and decomposition open their data through :func:`load_for_model` with the
model card's ``dataset``, ``input_shape``, ``mean``/``std`` and ``resize`` (the card's fields are
passed as plain values: this layer knows no model card). The dataset's images are renormalised from the
dataset's own mean/std to the model's, so a model imported with ImageNet statistics and evaluated on a
dataset normalised otherwise sees the pixels it was trained on. A channel count that differs is an
:class:`~xai_serve.errors.InvalidArgumentError` naming both.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import replace
from typing import Any

import torch
from torch.utils.data import Dataset

from xai_serve.data.bundle import DatasetBundle
from xai_serve.data.registry import load_dataset
from xai_serve.errors import InvalidArgumentError, InvalidParameterError


class Renormalised(Dataset[tuple[torch.Tensor, int]]):
    """``dataset``'s images taken from normalisation ``source`` (mean, std) to ``target``."""

    def __init__(
        self,
        dataset: Dataset[tuple[torch.Tensor, int]],
        source: tuple[Sequence[float], Sequence[float]],
        target: tuple[Sequence[float], Sequence[float]],
    ) -> None:
        self.dataset = dataset
        view = (-1, 1, 1)
        self._scale = torch.tensor(source[1]).view(view) / torch.tensor(target[1]).view(view)
        self._shift = (torch.tensor(source[0]) - torch.tensor(target[0])).view(view) / torch.tensor(
            target[1]
        ).view(view)

    def __len__(self) -> int:
        return len(self.dataset)  # type: ignore[arg-type]

    def __getitem__(self, index: int) -> tuple[torch.Tensor, int]:
        x, y = self.dataset[index]
        return x * self._scale.to(x.dtype) + self._shift.to(x.dtype), y

    def __getattr__(self, name: str) -> Any:  # per-sample targets of the wrapped set (pattern digits)
        if name == "dataset":
            raise AttributeError(name)
        return getattr(self.dataset, name)


def load_for_model(
    name: str,
    split: str,
    *,
    input_shape: Sequence[int],
    mean: Sequence[float],
    std: Sequence[float],
    resize: int = 0,
    model: str = "the model",
    root: str | os.PathLike[str] | None = None,
    seed: int = 0,
) -> DatasetBundle:
    """``split`` of dataset ``name`` with the model's channels and normalisation (see the module doc)."""
    options: dict[str, Any] = {}
    if name == "imagefolder":  # a folder of any images: sized and normalised as the model wants
        options = {
            "image_size": list(input_shape[1:]),
            "mean": list(mean),
            "std": list(std),
            "resize": resize,
        }
    shape = "x".join(str(v) for v in input_shape)
    try:
        bundle = load_dataset(name, split, root=root, seed=seed, channels=int(input_shape[0]), **options)
    except InvalidParameterError as exc:  # a dataset of fixed channels refusing the model's count
        raise InvalidArgumentError(
            f"dataset {name} cannot give {model} its {input_shape[0]}-channel images ({shape}): {exc}"
        ) from exc
    if bundle.input_shape[0] != input_shape[0]:
        have = "x".join(str(v) for v in bundle.input_shape)
        raise InvalidArgumentError(
            f"dataset {name} has {bundle.input_shape[0]}-channel images ({have}) but {model} expects "
            f"{input_shape[0]} channels ({shape}); give a dataset of the model's kind (--dataset)"
        )
    if list(bundle.mean) == list(mean) and list(bundle.std) == list(std):
        return bundle
    if len(mean) != len(bundle.mean):
        raise InvalidArgumentError(
            f"{model}'s normalisation has {len(mean)} channels, dataset {name} {len(bundle.mean)}"
        )
    dataset = Renormalised(bundle.dataset, (bundle.mean, bundle.std), (mean, std))
    return replace(bundle, dataset=dataset, mean=list(mean), std=list(std))


def load_for_card(
    name: str, split: str, card: Any, *, root: str | os.PathLike[str] | None = None, seed: int = 0
) -> DatasetBundle:
    """:func:`load_for_model` with the input shape, normalisation and resize of a model card (any object
    with ``input_shape``, ``mean``, ``std``, ``resize`` and ``model``: ``xai_serve.models.ModelCard``)."""
    return load_for_model(
        name,
        split,
        input_shape=card.input_shape,
        mean=card.mean,
        std=card.std,
        resize=card.resize,
        model=f"model {card.model}",
        root=root,
        seed=seed,
    )
