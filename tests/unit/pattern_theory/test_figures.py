"""``xai gpt`` figures of General Pattern Theory (Tjoa & Guan) on a tiny random ResGPTNet checkpoint
(2 classes, 2 pixels: a few seconds): what each panel shows against the arrays computed here."""

from __future__ import annotations

from pathlib import Path

import matplotlib
import numpy as np
import pytest
import torch
from typer.testing import CliRunner

from xai_serve.cli import app
from xai_serve.data import pattern_digits as pd
from xai_serve.data import pattern_growth as pg
from xai_serve.explain import Component, explain
from xai_serve.models import load_checkpoint
from xai_serve.pattern_theory import figures as fg
from xai_serve.pattern_theory.commands import gpt_figures, one_per_class
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


def _kept_figures(monkeypatch: pytest.MonkeyPatch) -> list:  # type: ignore[type-arg]
    """The matplotlib figures the figure functions render to PNG, kept for inspection."""
    kept = []
    render = fg._png

    def keep(fig):  # type: ignore[no-untyped-def]
        kept.append(fig)
        return render(fig)

    monkeypatch.setattr(fg, "_png", keep)
    return kept


def _expected_map(
    model: torch.nn.Module, x: torch.Tensor, method: str, params: dict, target: object
) -> np.ndarray:  # type: ignore[type-arg]
    heat = explain(model, x, {method: params}, target)[method][0].detach().sum(dim=0).numpy()
    return heat / np.abs(heat).max()


def _render(fig) -> np.ndarray:  # type: ignore[no-untyped-def]
    """The figure drawn again (RGBA), at >= 3 screen pixels per map cell (no smoothing of the cells)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    fig.set_dpi(200)
    canvas = FigureCanvasAgg(fig)  # the figure was closed after its PNG was written
    canvas.draw()
    return np.asarray(canvas.buffer_rgba())


def _shown_colours(rgba: np.ndarray, ax) -> np.ndarray:  # type: ignore[no-untyped-def]
    """The RGB the rendered figure shows at the centre of every cell of ``ax``'s 28 x 28 image."""
    ii, jj = np.meshgrid(np.arange(28), np.arange(28), indexing="ij")
    xy = ax.transData.transform(np.stack([jj.ravel(), ii.ravel()], axis=1).astype(float))
    cols = np.floor(xy[:, 0]).astype(int)
    rows = np.floor(rgba.shape[0] - xy[:, 1]).astype(int)
    return rgba[rows, cols, :3].reshape(28, 28, 3) / 255.0


def test_heatmap_panels_show_the_normalised_maps(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    model, _ = load_checkpoint(write_gpt_checkpoint(tmp_path, seed=2, generator_bias=0.5))
    x, y0, _, _ = one_per_class(0)
    kept = _kept_figures(monkeypatch)
    png = fg.class_heatmaps_figure(model, x[:2], y0[:2])
    assert png.startswith(b"\x89PNG") and len(kept) == 1
    fig = kept[0]
    axes = np.array(fig.axes).reshape(2, 1 + len(fg.METHODS))
    bwr = matplotlib.colormaps["bwr"]
    rgba = _render(fig)
    for r in range(2):
        np.testing.assert_array_equal(axes[r, 0].images[0].get_array(), x[r, 0].numpy())
        assert axes[r, 0].get_title() == f"y = {int(y0[r])}"
        for c, (title, (method, params)) in enumerate(fg.METHODS.items(), start=1):
            want = _expected_map(model, x[r : r + 1], method, params, int(y0[r]))
            ax = axes[r, c]
            assert ax.get_title() == title
            np.testing.assert_allclose(np.asarray(ax.images[0].get_array()), want, rtol=0, atol=1e-6)
            shown = _shown_colours(rgba, ax)
            np.testing.assert_allclose(shown, bwr((want + 1) / 2)[..., :3], rtol=0, atol=0.02)


def test_samples_and_component_panels_draw_the_model_outputs(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    model, _ = load_checkpoint(write_gpt_checkpoint(tmp_path, seed=2, generator_bias=0.5))
    x, y0, yg0, ys0 = one_per_class(0)
    kept = _kept_figures(monkeypatch)
    fg.samples_figure(model, x[:2], y0[:2], yg0[:2], ys0[:2])
    with torch.no_grad():
        y, yg, ys = model(x[:2])
    axes = np.array(kept[0].axes).reshape(2, 3)
    for r in range(2):
        truth = ((pg.develop(8, pg.code(yg0[r].numpy() + 1, ys0[r].numpy() + 1)) - 1) > 0).astype(float)
        pred = (pg.develop(8, pg.code(yg[r].argmax(0).numpy() + 1, ys[r].argmax(0).numpy() + 1)) - 1) > 0
        drawn = [np.asarray(ax.images[0].get_array()) for ax in axes[r]]
        np.testing.assert_array_equal(drawn[0], x[r, 0].numpy())
        np.testing.assert_array_equal(drawn[1], truth)
        np.testing.assert_array_equal(drawn[2], pred.astype(float))
        assert axes[r, 2].get_title() == f"predicted ({int(y[r].argmax())})"

    kept.clear()
    figures = fg.component_heatmaps(model, x[1:2], yg0[1], ys0[1], limit=1)
    assert set(figures) == {"yg0", "ys0", "yg", "ys"} and len(kept) == 4
    i, j = fg.seed_pixels(yg0[1].numpy(), 1)[0]
    ax = np.array(kept[0].axes).reshape(1, 1 + len(fg.METHODS))  # yg0: the true generator at (i, j)
    target = Component("yg", i, j, int(yg0[1][i, j]))
    assert ax[0, 0].get_title() == f"yg[{int(yg0[1][i, j])}] at ({i},{j})"
    for c, (method, params) in enumerate(fg.METHODS.values(), start=1):
        want = _expected_map(model, x[1:2], method, params, target)
        np.testing.assert_allclose(np.asarray(ax[0, c].images[0].get_array()), want, rtol=0, atol=1e-6)


def test_gpt_help_names_general_pattern_theory() -> None:
    result = CliRunner().invoke(app, ["gpt", "--help"], env={"COLUMNS": "200"})
    assert result.exit_code == 0 and "General Pattern Theory" in result.output
