"""The released ResNet-20 brought in by ``xai import`` runs every ``xai decompose`` command from its card
(dataset, normalisation), on the device asked for, and the shipped fine-tuning recipe (the paper's Adam lr
1e-4, batch 64, one epoch, flip + crop) fine-tunes its decomposed form."""

from __future__ import annotations

import json
import tomllib
from pathlib import Path

import torch
from typer.testing import CliRunner

from xai_serve.cli import app
from xai_serve.models import load_checkpoint

runner = CliRunner()
RECIPE = Path(__file__).resolve().parents[3] / "training" / "cifar10_resnet20_decomposed_finetune.toml"


def _ok(*args: str) -> str:
    result = runner.invoke(app, list(args))
    assert result.exit_code == 0, result.output
    return result.output


def test_imported_release_through_the_decompose_commands(tmp_path: Path, released) -> None:
    root = released.write_cifar_folder(tmp_path / "data", per_class_test=2, per_class_train=2)
    ckpt = tmp_path / "resnet20_released"
    _ok("import", str(released.resnet20_weights), "--out", str(ckpt), "--arch", "resnet20")
    idx = str(released.index_files[5])
    out = _ok(
        "decompose", "validate", str(ckpt), "--indices", idx, "--data-root", str(root), "--device", "auto"
    )
    assert "cifar10 test (20 images)" in out
    _ok(
        "decompose",
        "find",
        str(ckpt),
        "--k",
        "5",
        "--out",
        str(tmp_path / "i.json"),
        "--data-root",
        str(root),
        "--device",
        "cpu",
    )
    _ok(
        "decompose",
        "essential",
        str(ckpt),
        "--indices",
        idx,
        "--out",
        str(tmp_path / "e.json"),
        "--data-root",
        str(root),
        "--device",
        "cpu",
    )
    counts = json.loads((tmp_path / "e.json").read_text())["ours"]
    assert sum(v["images"] for v in counts.values()) == 20
    bad = runner.invoke(app, ["decompose", "validate", str(ckpt), "--indices", idx, "--device", "tpu"])
    assert bad.exit_code == 2 and "--device must be cpu, cuda, cuda:N or auto" in bad.output

    recipe = tomllib.loads(RECIPE.read_text())
    assert recipe["optimizer"] == {"name": "adam", "lr": 1e-4}
    assert recipe["batch_size"] == 64 and recipe["epochs"] == 1 and recipe["data"]["augment"] is True
    local = tmp_path / "ft.toml"
    local.write_text(RECIPE.read_text().replace('root = ""', f"root = {json.dumps(str(root))}"))
    ft = tmp_path / "ft"
    _ok(
        "decompose",
        "finetune",
        str(ckpt),
        "--indices",
        idx,
        "--recipe",
        str(local),
        "--out",
        str(ft),
        "--quiet",
    )
    _model, card = load_checkpoint(ft)
    assert card.model == "decomposed" and card.model_kwargs["base"] == "resnet20"
    weight = torch.load(ft / "best.pt", weights_only=True)["linear.weight"]
    sets = released.released_indices(5)
    off = torch.ones_like(weight, dtype=torch.bool)
    for c, s in enumerate(sets):
        off[c, s] = False
    assert int((weight[off] != 0).sum()) == 0
