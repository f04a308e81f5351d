"""``cifar10``: the CIFAR-10 python pickles from a local folder (read by :class:`CifarBatches`).

Expected layout: ``<root>/cifar-10-batches-py/{data_batch_1..5, test_batch, batches.meta}``.
``train``/``val``: seeded 45k/5k split of the training batches (``val_fraction`` 0.1); ``test``: the
10k test batch. Normalisation as the SimpleNet study (mean [125.3,123.0,113.9]/255, std [63.0,62.1,66.7]/255);
``augment=True`` adds random crop (padding 4) + horizontal flip to the train split.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
from torch.utils.data import Dataset

from xai_serve.data.bundle import DatasetBundle
from xai_serve.data.local import data_root, require_files
from xai_serve.data.registry import register_dataset
from xai_serve.data.splits import holdout_subset
from xai_serve.errors import DatasetNotFoundError, InvalidParameterError

MEAN = [125.3 / 255, 123.0 / 255, 113.9 / 255]
STD = [63.0 / 255, 62.1 / 255, 66.7 / 255]
LABELS = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"]
FILES = [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch", "batches.meta"]


class CifarBatches(Dataset[tuple[torch.Tensor, int]]):
    """The images of CIFAR-10 python batch files (pickled dicts with ``data`` [N, 3072] uint8 and
    ``labels``), checked for structure rather than md5, so any copy in the official layout loads (the
    decomposition tests write a small synthetic one)."""

    def __init__(self, files: list[Path], transform: Callable[[Any], torch.Tensor]) -> None:
        import pickle

        import numpy as np

        data, labels = [], []
        for path in files:
            try:
                with path.open("rb") as f:
                    entry = pickle.load(f, encoding="latin1")
                x = np.asarray(entry["data"], dtype=np.uint8).reshape(-1, 3, 32, 32)
                y = [int(v) for v in entry.get("labels", entry.get("fine_labels", []))]
            except Exception as exc:  # unpickling / key / shape errors
                raise DatasetNotFoundError(f"cifar10: {path} is not a CIFAR-10 python batch: {exc}") from exc
            if len(y) != len(x) or any(not 0 <= v < len(LABELS) for v in y):
                raise DatasetNotFoundError(f"cifar10: {path} has {len(x)} images but bad labels")
            data.append(x)
            labels += y
        self.data = np.concatenate(data).transpose(0, 2, 3, 1)  # HWC, as PIL wants
        self.targets = labels
        self.transform = transform

    def __len__(self) -> int:
        return len(self.targets)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, int]:
        from PIL import Image

        return self.transform(Image.fromarray(self.data[index])), self.targets[index]


@register_dataset("cifar10")
def load_cifar10(
    split: str,
    *,
    root: str | os.PathLike[str] | None = None,
    seed: int = 0,
    channels: int | None = None,
    val_fraction: float = 0.1,
    augment: bool = False,
) -> DatasetBundle:
    from torchvision import transforms

    if channels not in (None, 3):
        raise InvalidParameterError(f"cifar10 has 3 channels, got channels={channels}")
    base = data_root(root)
    require_files(
        "cifar10",
        base / "cifar-10-batches-py",
        FILES,
        "Extract cifar-10-python.tar.gz (the python version) into the root folder.",
    )
    steps: list[object] = []
    if augment and split == "train":
        steps += [transforms.RandomCrop(32, padding=4), transforms.RandomHorizontalFlip()]
    steps += [transforms.ToTensor(), transforms.Normalize(MEAN, STD)]
    names = FILES[:5] if split != "test" else ["test_batch"]
    full = CifarBatches([base / "cifar-10-batches-py" / n for n in names], transforms.Compose(steps))
    dataset: Dataset[tuple[torch.Tensor, int]] = full
    if split != "test":
        dataset = holdout_subset(full, split, val_fraction, seed)
    return DatasetBundle(
        name="cifar10",
        split=split,
        dataset=dataset,
        mean=list(MEAN),
        std=list(STD),
        labels=list(LABELS),
        input_shape=[3, 32, 32],
    )
