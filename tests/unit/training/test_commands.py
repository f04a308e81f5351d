from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

from xai_serve.cli import app
from xai_serve.testing import tiny_recipe_text

TINY = tiny_recipe_text("cli_tiny", seed=1)


def test_train_and_finetune_commands(tmp_path: Path) -> None:
    runner = CliRunner()
    recipe = tmp_path / "cli_tiny.toml"
    recipe.write_text(TINY)
    src, dst = tmp_path / "src", tmp_path / "dst"
    result = runner.invoke(app, ["train", str(recipe), "--out", str(src), "--quiet"])
    assert result.exit_code == 0, result.output
    assert "test accuracy" in result.output
    assert json.loads((src / "metrics.json").read_text())["epochs"] == 2

    result = runner.invoke(app, ["train", str(recipe), "--out", str(src), "--quiet"])
    assert result.exit_code == 2 and "--force" in result.output

    args = ["finetune", str(src), "--recipe", str(recipe), "--out", str(dst), "--quiet"]
    assert runner.invoke(app, args).exit_code == 0
    refused = runner.invoke(app, args)
    assert refused.exit_code == 2 and "already exists" in refused.output
    assert runner.invoke(app, [*args, "--force"]).exit_code == 0


def test_train_command_reports_the_bad_recipe_key(tmp_path: Path) -> None:
    recipe = tmp_path / "bad.toml"
    recipe.write_text(TINY.replace("batch_size = 128", "batch_sise = 128"))
    result = CliRunner().invoke(app, ["train", str(recipe), "--out", str(tmp_path / "o")])
    assert result.exit_code == 2
    assert "error: unknown key 'batch_sise'" in result.output
    assert not (tmp_path / "o").exists()


def test_missing_dataset_folder_is_a_clear_cli_error(tmp_path: Path) -> None:
    recipe = tmp_path / "m.toml"
    recipe.write_text(TINY.replace('name = "digits"', 'name = "mnist"'))
    result = CliRunner().invoke(
        app, ["train", str(recipe), "--out", str(tmp_path / "o"), "--data-root", str(tmp_path / "nodata")]
    )
    assert result.exit_code == 2
    assert "train-images-idx3-ubyte" in result.output and "MNIST" in result.output
