"""Evaluation follows the checkpoint's card: its dataset when none is given, its normalisation (the
dataset's images renormalised), a channel mismatch named; ``basic --misclassified`` for any checkpoint
(here one brought in by ``xai import``)."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest
import torch
from typer.testing import CliRunner

from xai_serve.cli import app
from xai_serve.data import load_dataset
from xai_serve.data.for_model import load_for_model
from xai_serve.errors import InvalidArgumentError
from xai_serve.models import create_model


def _imported(tmp_path: Path, normalize: str) -> Path:
    torch.manual_seed(0)
    torch.save(create_model("simplenet_310k").state_dict(), tmp_path / "w.pt")
    out = tmp_path / f"ckpt_{normalize.replace('/', '_')}"
    args = ["import", str(tmp_path / "w.pt"), "--out", str(out), "--arch", "simplenet_310k"]
    result = CliRunner().invoke(app, [*args, "--dataset", "digits", "--normalize", normalize])
    assert result.exit_code == 0, result.output
    return out


def test_basic_misclassified_on_an_imported_checkpoint_with_the_cards_dataset(tmp_path: Path) -> None:
    ckpt = _imported(tmp_path, "0.2/0.5")
    out = tmp_path / "eval"
    args = ["evaluate", "basic", "--checkpoint", str(ckpt), "--samples", "40", "--out", str(out)]
    result = CliRunner().invoke(app, [*args, "--misclassified"])
    assert result.exit_code == 0, result.output
    rows = list(csv.DictReader((out / "predictions.csv").open()))
    wrong = {
        f"{int(r['index']):05d}_true{r['label']}_pred{r['predicted']}.png"
        for r in rows
        if r["correct"] == "0"
    }
    assert wrong, "a random model gets some of 40 digits wrong"
    assert {p.name for p in (out / "misclassified").iterdir()} == wrong
    assert json.loads((out / "basic.json").read_text())["misclassified"] == len(wrong)
    assert json.loads((out / "run.json").read_text())["config"]["dataset"] == "digits"


def test_images_are_renormalised_to_the_models_statistics() -> None:
    plain = load_dataset("digits", "test", channels=1)
    seen = load_for_model("digits", "test", input_shape=[1, 28, 28], mean=[0.2], std=[0.5])
    x, _ = plain.dataset[3]
    y, _ = seen.dataset[3]
    pixels = x * plain.std[0] + plain.mean[0]
    assert torch.allclose(y, (pixels - 0.2) / 0.5, atol=1e-5)
    assert seen.mean == [0.2] and seen.std == [0.5]


def test_a_channel_mismatch_names_both() -> None:
    with pytest.raises(
        InvalidArgumentError,
        match=r"dataset pattern_digits cannot give model m its 3-channel images \(3x28x28\): .*1 channel",
    ):
        load_for_model(
            "pattern_digits", "test", input_shape=[3, 28, 28], mean=[0] * 3, std=[1] * 3, model="model m"
        )


def test_imagefolder_applies_the_cards_resize_and_centre_crop(tmp_path: Path) -> None:
    import numpy as np
    from PIL import Image
    from torchvision import transforms

    rng = np.random.default_rng(0)
    for split in ("train", "test"):
        for cls in ("a", "b"):
            (tmp_path / split / cls).mkdir(parents=True)
            Image.fromarray(rng.integers(0, 256, (200, 300, 3), dtype=np.uint8)).save(
                tmp_path / split / cls / "x.png"
            )
    mean, std = [0.485, 0.456, 0.406], [0.229, 0.224, 0.225]
    bundle = load_for_model(
        "imagefolder", "test", input_shape=[3, 224, 224], mean=mean, std=std, resize=256, root=tmp_path
    )
    x, label = bundle.dataset[0]
    expected = transforms.Compose(
        [
            transforms.Resize(256),
            transforms.CenterCrop(224),
            transforms.ToTensor(),
            transforms.Normalize(mean, std),
        ]
    )(Image.open(tmp_path / "test" / bundle.labels[label] / "x.png").convert("RGB"))
    assert x.shape == (3, 224, 224) and torch.allclose(x, expected, atol=1e-5)
