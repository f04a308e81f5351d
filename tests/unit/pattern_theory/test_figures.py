"""``xai gpt`` figures on a tiny random GPT checkpoint (2 classes, 2 pixels: a few seconds)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from typer.testing import CliRunner

from xai_serve.cli import app
from xai_serve.data import pattern_digits as pd
from xai_serve.data import pattern_growth as pg
from xai_serve.pattern_theory.commands import gpt_figures
from xai_serve.pattern_theory.figures import grow_from_maps
from xai_serve.testing import write_gpt_checkpoint


def test_grow_from_true_maps_is_the_grown_board() -> None:
    rng = np.random.default_rng(4)
    seeds, t, _ = pd.class_seeds(8, rng)
    i, k = pg.decode(seeds)
    assert np.array_equal(grow_from_maps(i - 1, k - 1, t), ((pg.develop(t, seeds) - 1) > 0).astype(float))


def test_figures_and_report(tmp_path: Path) -> None:
    ckpt = write_gpt_checkpoint(tmp_path)
    out = tmp_path / "fig"
    index = gpt_figures(ckpt, out, classes=(0, 9), pixels=2)
    names = {p.name for p in out.glob("*.png")}
    assert {"samples.png", "heatmaps.y0.png", "0.yg0.png", "0.ys0.png", "9.yg0.png"} <= names
    page = index.read_text()
    assert all(name in page for name in names)
    assert all((out / n).read_bytes().startswith(b"\x89PNG") for n in names)
    result = CliRunner().invoke(app, ["gpt", "samples", str(ckpt), "--out", str(tmp_path / "cli")])
    assert result.exit_code == 0, result.output
    assert (tmp_path / "cli" / "samples.png").is_file()
    bad = CliRunner().invoke(app, ["gpt", "samples", str(tmp_path / "nothing"), "--out", str(tmp_path / "x")])
    assert bad.exit_code == 2
