"""Datasets: ``load_dataset(name, split, *, root=None, seed=0, channels=None) -> DatasetBundle``.

Registered names: ``digits`` (built in, scikit-learn's 8x8 digits resized to 28x28 or 3x32x32),
``mnist`` (local IDX files), ``cifar10`` (local python pickles), ``imagefolder`` (local class folders),
``pattern_digits``
(the General Pattern Theory code's generated pattern-theory digits, with per-pixel seed targets). Nothing is
downloaded; missing files raise ``DatasetNotFoundError`` naming them.
"""

from xai_serve.data import cifar10, digits, imagefolder, mnist, pattern_digits  # noqa: F401  (registration)
from xai_serve.data.bundle import SPLITS, DatasetBundle, TensorImageDataset
from xai_serve.data.registry import list_datasets, load_dataset, register_dataset

__all__ = [
    "SPLITS",
    "DatasetBundle",
    "TensorImageDataset",
    "list_datasets",
    "load_dataset",
    "register_dataset",
]
