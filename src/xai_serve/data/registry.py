"""The dataset registry: ``load_dataset(name, split, ...)`` and ``list_datasets()``."""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any, TypeVar

from xai_serve.data.bundle import DatasetBundle, check_split
from xai_serve.errors import InvalidParameterError, NotFoundError

Loader = Callable[..., DatasetBundle]
F = TypeVar("F", bound=Loader)

_DATASETS: dict[str, Loader] = {}


def register_dataset(name: str) -> Callable[[F], F]:
    """Decorator registering ``loader(split, *, root, seed, channels, **options) -> DatasetBundle``."""

    def decorator(loader: F) -> F:
        _DATASETS[name] = loader
        return loader

    return decorator


def list_datasets() -> list[str]:
    return sorted(_DATASETS)


def load_dataset(
    name: str,
    split: str,
    *,
    root: str | os.PathLike[str] | None = None,
    seed: int = 0,
    channels: int | None = None,
    **options: Any,
) -> DatasetBundle:
    """Load ``split`` ("train" | "val" | "test") of dataset ``name``.

    ``seed`` fixes the train/val(/test) split; ``channels`` picks 1 or 3 channels where the dataset
    supports both (``digits``: 1 -> 1x28x28, 3 -> 3x32x32). ``options`` are dataset specific
    (``val_fraction``; ``augment`` for cifar10 train). Nothing is ever downloaded: missing files raise
    :class:`~xai_serve.errors.DatasetNotFoundError` naming them.
    """
    if name not in _DATASETS:
        raise NotFoundError(f"unknown dataset {name!r}; known datasets: {', '.join(list_datasets())}")
    check_split(split)
    try:
        return _DATASETS[name](split, root=root, seed=seed, channels=channels, **options)
    except TypeError as exc:
        raise InvalidParameterError(f"bad options for dataset {name!r}: {exc}") from exc
