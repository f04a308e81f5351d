"""``cifar10``: the CIFAR-10 python pickles from a local folder, via ``torchvision.datasets.CIFAR10``.

Expected layout: ``<root>/cifar-10-batches-py/{data_batch_1..5, test_batch, batches.meta}``.
``train``/``val``: seeded 45k/5k split of the training batches (``val_fraction`` 0.1); ``test``: the
10k test batch. Normalisation as seed B (mean [125.3,123.0,113.9]/255, std [63.0,62.1,66.7]/255);
``augment=True`` adds random crop (padding 4) + horizontal flip to the train split.
"""

from __future__ import annotations

import os

import torch
from torch.utils.data import Dataset, Subset

from xai_serve.data.bundle import DatasetBundle
from xai_serve.data.local import data_root, require_files
from xai_serve.data.registry import register_dataset
from xai_serve.data.splits import holdout_split
from xai_serve.errors import DatasetNotFoundError, InvalidParameterError

MEAN = [125.3 / 255, 123.0 / 255, 113.9 / 255]
STD = [63.0 / 255, 62.1 / 255, 66.7 / 255]
LABELS = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"]
FILES = [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch", "batches.meta"]


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
    from torchvision import datasets, transforms

    if channels not in (None, 3):
        raise InvalidParameterError(f"cifar10 has 3 channels, got channels={channels}")
    base = data_root(root)
    require_files("cifar10", base / "cifar-10-batches-py", FILES,
                  "Extract cifar-10-python.tar.gz (the python version) into the root folder.")
    steps: list[object] = []
    if augment and split == "train":
        steps += [transforms.RandomCrop(32, padding=4), transforms.RandomHorizontalFlip()]
    steps += [transforms.ToTensor(), transforms.Normalize(MEAN, STD)]
    try:
        full = datasets.CIFAR10(str(base), train=split != "test", transform=transforms.Compose(steps),
                                download=False)
    except RuntimeError as exc:  # torchvision's md5 check failed
        raise DatasetNotFoundError(f"cifar10: files in {base / 'cifar-10-batches-py'} are corrupt: {exc}") \
            from exc
    dataset: Dataset[tuple[torch.Tensor, int]] = full
    if split != "test":
        train_idx, val_idx = holdout_split(len(full), val_fraction, seed)
        dataset = Subset(full, (train_idx if split == "train" else val_idx).tolist())
    return DatasetBundle(name="cifar10", split=split, dataset=dataset, mean=list(MEAN), std=list(STD),
                         labels=list(LABELS), input_shape=[3, 32, 32])
