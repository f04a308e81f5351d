"""Shared fixtures for the serving unit tests: the shared tiny checkpoint (random-init digits-shaped
SimpleNet), its model and card, image encoders and a TorchServe context double."""

from __future__ import annotations

import io
import json
import zipfile
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
import yaml
from PIL import Image

from xai_serve.models import ModelCard, load_checkpoint
from xai_serve.testing import write_checkpoint


def png_bytes(arr: np.ndarray, fmt: str = "PNG") -> bytes:
    buf = io.BytesIO()
    Image.fromarray(arr).save(buf, format=fmt)
    return buf.getvalue()


@pytest.fixture(scope="session")
def ckpt_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The shared tiny checkpoint (:func:`xai_serve.testing.write_checkpoint`): random SimpleNet-310k."""
    return write_checkpoint(tmp_path_factory.mktemp("ckpt"))


@pytest.fixture(scope="session")
def card(ckpt_dir: Path) -> ModelCard:
    return ModelCard.load(ckpt_dir / "model.json")


@pytest.fixture(scope="session")
def model(ckpt_dir: Path) -> torch.nn.Module:
    return load_checkpoint(ckpt_dir)[0]


@pytest.fixture()
def digit_png() -> bytes:
    rng = np.random.default_rng(0)
    return png_bytes((rng.random((28, 28)) * 255).astype(np.uint8))


class FakeMetric:
    def __init__(self, log: list, name: str) -> None:
        self.log, self.name = log, name

    def add_or_update(self, value: float, dims: list[str]) -> None:
        self.log.append((self.name, value, tuple(dims)))


class FakeMetrics:
    def __init__(self) -> None:
        self.log: list[tuple[str, float, tuple[str, ...]]] = []

    def get_metric(self, name: str, kind: Any) -> FakeMetric:
        return FakeMetric(self.log, name)


class FakeContext:
    """What XaiHandler uses of ts.context.Context (per-request headers, status, content type)."""

    def __init__(self, model_dir: Path, manifest: dict, yaml_config: dict, name: str = "tiny") -> None:
        self.model_name = name
        self.system_properties = {"model_dir": str(model_dir), "gpu_id": None, "batch_size": 8}
        self.manifest = manifest
        self.model_yaml_config = yaml_config
        self.metrics = FakeMetrics()
        self.headers: list[dict] = []
        self.content_types: dict[int, str] = {}
        self.statuses: dict[int, tuple[int, str]] = {}

    @classmethod
    def of_model_dir(cls, model_dir: Path, name: str = "tiny") -> FakeContext:
        """The context of an unpacked archive: its MAR-INF/MANIFEST.json and model-config.yaml."""
        manifest = json.loads((model_dir / "MAR-INF" / "MANIFEST.json").read_text())
        cfg = yaml.safe_load((model_dir / "model-config.yaml").read_text())
        return cls(model_dir, manifest, cfg, name)

    def get_request_header(self, idx: int, key: str) -> Any:
        return self.headers[idx].get(key)

    def get_all_request_header(self, idx: int) -> dict:
        return self.headers[idx]

    def set_response_content_type(self, idx: int, value: str) -> None:
        self.content_types[idx] = value

    def set_response_status(self, code: int = 200, phrase: str = "", idx: int = 0) -> None:
        self.statuses[idx] = (code, phrase)


@pytest.fixture(scope="session")
def encode_png():
    """``encode_png(uint8 array, fmt="PNG") -> bytes``."""
    return png_bytes


@pytest.fixture(scope="session")
def context_cls() -> type[FakeContext]:
    return FakeContext


def unpack_mar(mar: Path, directory: Path) -> Path:
    """``directory`` with the archive ``mar`` extracted into it (as TorchServe fills a model dir)."""
    with zipfile.ZipFile(mar) as z:
        z.extractall(directory)
    return directory


@pytest.fixture(scope="session")
def unpack():
    """``unpack(mar, directory) -> directory``: :func:`unpack_mar`."""
    return unpack_mar
