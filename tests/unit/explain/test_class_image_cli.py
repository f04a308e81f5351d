"""``xai class-image``: intermediates every iterations/20 steps named as the SimpleNet study's code names
them, the final
image, and run_details.txt; the saved images are the class_image method's own iterates."""

from __future__ import annotations

import re

import numpy as np
import torch
from PIL import Image
from typer.testing import CliRunner

from xai_serve.cli import app
from xai_serve.explain import create_explainer
from xai_serve.explain.context import ModelContext
from xai_serve.models import ModelCard, create_model, load_checkpoint


def _checkpoint(path) -> None:
    path.mkdir(parents=True)
    torch.manual_seed(0)
    net = create_model("mlp", in_features=64, hidden=(16,), num_classes=3)
    ModelCard(model="mlp", model_kwargs={"in_features": 64, "hidden": [16], "num_classes": 3},
              dataset="synthetic", input_shape=[1, 8, 8], mean=[0.5], std=[0.25],
              labels=["a", "b", "c"]).save(path / "model.json")  # fmt: skip
    torch.save(net.state_dict(), path / "best.pt")


def test_class_image_cli_saves_what_the_seed_saves(tmp_path) -> None:
    ckpt, out = tmp_path / "ckpt", tmp_path / "out"
    _checkpoint(ckpt)
    res = CliRunner().invoke(
        app,
        ["class-image", str(ckpt), "--out", str(out), "--class", "1", "--class", "2", "--iterations", "41",
         "--lr", "0.5", "--seed", "3"],
    )  # fmt: skip
    assert res.exit_code == 0, res.output
    names = sorted(p.name for p in out.glob("c_1_iter_*.jpg"))
    steps = sorted(int(re.match(r"c_1_iter_(\d+)_loss_(-?[\d.]+)\.jpg", n).group(1)) for n in names)
    assert steps == [*range(2, 41, 2)]  # every 41 // 20 = 2 steps, up to the last (40)
    assert len(list(out.glob("c_2_iter_*.jpg"))) == len(steps)
    details = (out / "run_details.txt").read_text()
    for key in ("checkpoint:", "iterations", "save_every: 2", "final_logit:", "classes: [1, 2]", '"seed": 3'):
        assert key in details
    # the final PNG is the method's result (same parameters, in process)
    model, card = load_checkpoint(ckpt)
    ref = create_explainer(
        "class_image", model, context=ModelContext.of(card.mean, card.std), iterations=41, lr=0.5, seed=3
    )(torch.zeros(2, 1, 8, 8), [1, 2])
    final = np.asarray(Image.open(out / "c_1_final.png"), dtype=np.float64) / 255
    np.testing.assert_allclose(final, ref[0, 0].numpy(), atol=0.5 / 255)
    # the loss in a file name is -logit[class] before that step: it decreases overall
    by_step = {}
    for n in names:
        step, loss = re.match(r"c_1_iter_(\d+)_loss_(-?[\d.]+)\.jpg", n).groups()
        by_step[int(step)] = float(loss)
    assert by_step[40] < by_step[2]


def test_class_image_cli_error_is_typed(tmp_path) -> None:
    res = CliRunner().invoke(
        app, ["class-image", str(tmp_path / "missing"), "--out", str(tmp_path), "--class", "0"]
    )
    assert res.exit_code == 2 and "error:" in res.output
