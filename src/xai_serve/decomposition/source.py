"""Opening what the ``xai decompose`` commands are given: a checkpoint directory (``xai train``,
``convert-csg``) or a bare weights file (e.g. the released ``resnet20-12fca82f.th``) plus a model
name; and the data split they run on."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import torch
from torch import nn
from torch.utils.data import DataLoader

from xai_serve.data import DatasetBundle, load_dataset
from xai_serve.errors import CheckpointError
from xai_serve.models import ModelCard, canonicalise, create_model, load_checkpoint


def open_model(
    path: str | os.PathLike[str], *, model: str = "resnet20", num_classes: int | None = None
) -> tuple[nn.Module, ModelCard | None]:
    """``(model in eval mode, its card or None)`` from a checkpoint directory or a weights file."""
    p = Path(path)
    if p.is_dir():
        return load_checkpoint(p)
    if not p.is_file():
        raise CheckpointError(f"checkpoint not found: {p} (a checkpoint directory or a weights file)")
    kwargs: dict[str, Any] = {"weights": str(p)}
    if num_classes is not None:
        kwargs["num_classes"] = num_classes
    net = create_model(model, **kwargs)
    canonicalise(net)
    return net.eval(), None


def open_split(
    dataset: str, split: str, *, root: str | os.PathLike[str] | None, channels: int | None = None
) -> DatasetBundle:
    return load_dataset(dataset, split, root=root, channels=channels)


def batches(bundle: DatasetBundle, batch_size: int) -> DataLoader[tuple[torch.Tensor, int]]:
    return DataLoader(bundle.dataset, batch_size=batch_size, shuffle=False, num_workers=0)
