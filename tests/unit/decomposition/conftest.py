"""Fixtures of the decomposition tests: the released ResNet-20 and index files (tests/fixtures, see
tests/fixtures/decomposing_the_deep/PROVENANCE.md) and a synthetic CIFAR-10 folder writer."""

from __future__ import annotations

import json
import pickle
from pathlib import Path

import numpy as np
import pytest
import torch

from xai_serve.models import ModelCard, create_model
from xai_serve.testing import write_checkpoint

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures"
RELEASED_DIR = FIXTURES / "decomposing_the_deep"
RESNET20 = FIXTURES / "resnet20-12fca82f.th"
INDEX_FILES = {
    5: RELEASED_DIR / "resnet20_cifar-10_indices.json",
    10: RELEASED_DIR / "resnet20_cifar-10_10_10_indices.json",
    20: RELEASED_DIR / "resnet20_cifar-10_20_20_indices.json",
}
CSG_INDEX_FILE = RELEASED_DIR / "resnet20_cifar-10_csg_indices.json"
CSG_PTH = RELEASED_DIR / "resnet20_csg.pth"
CIFAR_MEAN = [125.3 / 255, 123.0 / 255, 113.9 / 255]
CIFAR_STD = [63.0 / 255, 62.1 / 255, 66.7 / 255]


def released_indices(k: int = 5) -> list[list[int]]:
    data = json.loads(INDEX_FILES[k].read_text())
    return [data[str(c)] for c in range(10)]


def write_cifar_folder(root: Path, per_class_test: int = 4, per_class_train: int = 2, seed: int = 0) -> Path:
    """A synthetic CIFAR-10 folder in the official python layout (cifar-10-batches-py/): random images."""
    rng = np.random.default_rng(seed)
    folder = root / "cifar-10-batches-py"
    folder.mkdir(parents=True, exist_ok=True)

    def batch(n_per_class: int) -> dict:
        labels = [c for c in range(10) for _ in range(n_per_class)]
        data = rng.integers(0, 256, size=(len(labels), 3072), dtype=np.uint8)
        return {
            "batch_label": "synthetic",
            "labels": labels,
            "data": data,
            "filenames": [f"{i}.png" for i in labels],
        }

    for i in range(1, 6):
        (folder / f"data_batch_{i}").write_bytes(pickle.dumps(batch(per_class_train)))
    (folder / "test_batch").write_bytes(pickle.dumps(batch(per_class_test)))
    names = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"]
    (folder / "batches.meta").write_bytes(pickle.dumps({"label_names": names, "num_vis": 3072}))
    return root


def write_resnet20_checkpoint(d: Path) -> Path:
    """A checkpoint directory (model.json + best.pt) holding the released ResNet-20."""
    d.mkdir(parents=True, exist_ok=True)
    model = create_model("resnet20", weights=str(RESNET20))
    torch.save(model.state_dict(), d / "best.pt")
    ModelCard(
        model="resnet20",
        model_kwargs={"num_classes": 10},
        dataset="cifar10",
        input_shape=[3, 32, 32],
        mean=CIFAR_MEAN,
        std=CIFAR_STD,
        labels=[f"class {i}" for i in range(10)],
    ).save(d / "model.json")
    return d


def write_digits_checkpoint(d: Path) -> Path:
    """A checkpoint directory (model.json + best.pt) of a random digits SimpleNet-310k (seed 0, mean 0.3,
    std 0.4, labels ``0`` .. ``9``)."""
    return write_checkpoint(d, mean=(0.3,), std=(0.4,), labels=[str(i) for i in range(10)])


def write_digits_resnet20_checkpoint(d: Path) -> Path:
    """A checkpoint directory of a random ResNet-20 for the 1x28x28 digits (seed 0; its last stage is
    7x7), like the demo's ``training/digits_resnet20.toml`` before training."""
    return write_checkpoint(
        d,
        model="resnet20",
        model_kwargs={"num_classes": 10, "in_chans": 1},
        mean=(0.3,),
        std=(0.4,),
        labels=[str(i) for i in range(10)],
    )


@pytest.fixture(scope="session")
def resnet20() -> torch.nn.Module:
    return create_model("resnet20", weights=str(RESNET20)).eval()


class ReleasedFiles:
    """The Decomposing the Deep release files and checkpoint builders the tests need, as one fixture (test
    modules cannot import conftest under importlib mode)."""

    fixtures = RELEASED_DIR
    resnet20_weights = RESNET20
    index_files = INDEX_FILES
    csg_index_file = CSG_INDEX_FILE
    csg_pth = CSG_PTH
    released_indices = staticmethod(released_indices)
    write_cifar_folder = staticmethod(write_cifar_folder)
    write_resnet20_checkpoint = staticmethod(write_resnet20_checkpoint)
    write_digits_checkpoint = staticmethod(write_digits_checkpoint)
    write_digits_resnet20_checkpoint = staticmethod(write_digits_resnet20_checkpoint)


@pytest.fixture(scope="session")
def released() -> type[ReleasedFiles]:
    return ReleasedFiles
