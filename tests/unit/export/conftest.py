"""A tiny digits MLP checkpoint (random weights: export and graph do not need training)."""

from __future__ import annotations

import pytest


@pytest.fixture(scope="session")
def digits_ckpt(tmp_path_factory):
    from xai_serve.testing import write_checkpoint

    return write_checkpoint(
        tmp_path_factory.mktemp("ckpt") / "mlp",
        model="mlp",
        model_kwargs={"input_shape": [1, 28, 28], "hidden": [32, 16]},
        mean=(0.5,),
        std=(0.25,),
        labels=[str(i) for i in range(10)],
        files=("best.pt", "weights.pt"),
    )
