"""Fixtures of the dissection tests: a synthetic Broden-format folder and a random digits SimpleNet
checkpoint (model.json + best.pt, :func:`xai_serve.testing.write_checkpoint`)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest


@pytest.fixture(scope="session")
def broden(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, np.ndarray]]:
    from xai_serve.data.synthetic_broden import write_synthetic_broden

    root = tmp_path_factory.mktemp("broden")
    truth = write_synthetic_broden(root, 24, image_size=56, mask_size=28, seed=3)
    return root, truth


@pytest.fixture(scope="session")
def checkpoint(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from xai_serve.testing import write_checkpoint

    return write_checkpoint(tmp_path_factory.mktemp("ckpt"))
