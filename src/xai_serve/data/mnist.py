"""``mnist``: the standard IDX files from a local folder, through ``torchvision.datasets.MNIST``.

Expected layout: ``<root>/MNIST/raw/{train,t10k}-{images-idx3,labels-idx1}-ubyte`` (uncompressed).
``train``/``val`` are a seeded 50k/10k split of the 60k training images (``val_fraction`` 1/6);
``test`` is the 10k test set. Normalisation (0.1307,)/(0.3081,) as in the SimpleNet study.
"""

from __future__ import annotations

import os

import torch
from torch.utils.data import Dataset

from xai_serve.data.bundle import DatasetBundle
from xai_serve.data.local import data_root, require_files
from xai_serve.data.registry import register_dataset
from xai_serve.data.splits import holdout_subset
from xai_serve.errors import InvalidParameterError

MEAN, STD = [0.1307], [0.3081]
FILES = [
    "train-images-idx3-ubyte",
    "train-labels-idx1-ubyte",
    "t10k-images-idx3-ubyte",
    "t10k-labels-idx1-ubyte",
]


@register_dataset("mnist")
def load_mnist(
    split: str,
    *,
    root: str | os.PathLike[str] | None = None,
    seed: int = 0,
    channels: int | None = None,
    val_fraction: float = 1 / 6,
) -> DatasetBundle:
    from torchvision import datasets, transforms

    if channels not in (None, 1):
        raise InvalidParameterError(f"mnist has 1 channel, got channels={channels}")
    base = data_root(root)
    require_files(
        "mnist",
        base / "MNIST" / "raw",
        FILES,
        "Copy the four uncompressed MNIST IDX files (gunzip the .gz ones) there.",
    )
    transform = transforms.Compose([transforms.ToTensor(), transforms.Normalize(MEAN, STD)])
    full = datasets.MNIST(str(base), train=split != "test", transform=transform, download=False)
    dataset: Dataset[tuple[torch.Tensor, int]] = full
    if split != "test":
        dataset = holdout_subset(full, split, val_fraction, seed)
    return DatasetBundle(
        name="mnist",
        split=split,
        dataset=dataset,
        mean=list(MEAN),
        std=list(STD),
        labels=[str(i) for i in range(10)],
        input_shape=[1, 28, 28],
    )
