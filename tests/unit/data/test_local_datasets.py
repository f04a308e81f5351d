from __future__ import annotations

import struct
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from xai_serve.data import load_dataset
from xai_serve.errors import DatasetNotFoundError, InvalidParameterError


def test_missing_mnist_names_the_expected_files(tmp_path: Path) -> None:
    with pytest.raises(DatasetNotFoundError) as info:
        load_dataset("mnist", "train", root=tmp_path)
    message = str(info.value)
    for name in ("train-images-idx3-ubyte", "t10k-labels-idx1-ubyte", str(tmp_path / "MNIST" / "raw")):
        assert name in message


def test_missing_cifar10_names_the_expected_files(tmp_path: Path) -> None:
    with pytest.raises(DatasetNotFoundError, match=r"data_batch_1.*test_batch.*batches\.meta"):
        load_dataset("cifar10", "test", root=tmp_path / "nowhere")


def test_missing_imagefolder(tmp_path: Path) -> None:
    with pytest.raises(InvalidParameterError, match="root"):
        load_dataset("imagefolder", "train")
    with pytest.raises(DatasetNotFoundError, match="does not exist"):
        load_dataset("imagefolder", "train", root=tmp_path / "nowhere")


def _write_idx(path: Path, array: np.ndarray) -> None:
    magic = 0x0800 | {1: 0x01, 3: 0x03}[array.ndim]
    path.write_bytes(
        struct.pack(">I", magic)
        + struct.pack(f">{array.ndim}I", *array.shape)
        + array.astype(np.uint8).tobytes()
    )


def test_mnist_reads_local_idx_files_and_splits_train(tmp_path: Path) -> None:
    raw = tmp_path / "MNIST" / "raw"
    raw.mkdir(parents=True)
    rng = np.random.default_rng(0)
    for prefix, n in (("train", 12), ("t10k", 6)):
        _write_idx(raw / f"{prefix}-images-idx3-ubyte", rng.integers(0, 256, (n, 28, 28)))
        _write_idx(raw / f"{prefix}-labels-idx1-ubyte", np.arange(n) % 10)
    train = load_dataset("mnist", "train", root=tmp_path, val_fraction=0.25)
    val = load_dataset("mnist", "val", root=tmp_path, val_fraction=0.25)
    test = load_dataset("mnist", "test", root=tmp_path)
    assert (len(train.dataset), len(val.dataset), len(test.dataset)) == (9, 3, 6)  # type: ignore[arg-type]
    x, y = test.dataset[3]
    assert x.shape == (1, 28, 28) and y == 3
    assert train.mean == [0.1307] and train.std == [0.3081]


def test_imagefolder_loads_and_carves_val_from_train(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    for split, n in (("train", 10), ("test", 4)):
        for cls in ("cat", "dog"):
            folder = tmp_path / split / cls
            folder.mkdir(parents=True)
            for i in range(n):
                Image.fromarray(rng.integers(0, 256, (12, 10, 3), dtype=np.uint8)).save(folder / f"{i}.png")
    train = load_dataset("imagefolder", "train", root=tmp_path)
    val = load_dataset("imagefolder", "val", root=tmp_path)
    test = load_dataset("imagefolder", "test", root=tmp_path, channels=1, image_size=8)
    assert train.labels == ["cat", "dog"] and train.input_shape == [3, 12, 10]
    assert (len(train.dataset), len(val.dataset), len(test.dataset)) == (18, 2, 8)  # type: ignore[arg-type]
    assert test.dataset[0][0].shape == (1, 8, 8)
    x = torch.stack([train.dataset[i][0] for i in range(18)])
    assert abs(float(x.mean())) < 0.1
