"""The General Pattern Theory figures (docs/methods.md#gpt-heatmaps): ``generate_samples``,
``heatmaps`` / ``heatmapsGC``.

* :func:`samples_figure`: per class, the image, the board grown from the true seeds and the board grown
  from the predicted seeds (``develop(8, code(argmax yg + 1, argmax ys + 1))``).
* :func:`class_heatmaps_figure`: one sample per class, target = its true class on ``y``: Grad-CAM at the
  1x1 input adapter (``channel_adj``, signed, as the original) and at a deep layer (``backbone.layer1``, 7x7),
  deconvnet, guided backprop; each map divided by its max |value|, ``bwr`` in [-1, 1].
* :func:`component_heatmaps`: for one sample, per non-empty seed pixel (true seeds: target = the true
  generator / transformation class; predicted seeds: the predicted ones), the same maps for the
  ``yg`` and ``ys`` pixel outputs (component targets).

Every figure is returned as PNG bytes; :func:`write_report` collects PNGs into one HTML page.
"""

from __future__ import annotations

import html
import io
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from xai_serve.atomic import atomic_write_bytes, atomic_write_text
from xai_serve.data import pattern_growth as pg
from xai_serve.explain import Component, explain

#: column title -> (method, params); the General Pattern Theory three Captum methods plus Grad-CAM at a deep
#: layer
METHODS: dict[str, tuple[str, dict[str, Any]]] = {
    "gradCAM (input adapter)": ("gradcam", {"layer": "channel_adj", "relu": False}),
    "gradCAM (layer1, 7x7)": ("gradcam", {"layer": "backbone.layer1", "relu": False}),
    "deconv": ("deconvnet", {}),
    "GuidedBP": ("guided_backprop", {}),
}


def _png(fig: Any) -> bytes:
    import matplotlib.pyplot as plt

    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=80, bbox_inches="tight")
    plt.close(fig)
    return buf.getvalue()


def _figure(rows: int, cols: int) -> tuple[Any, np.ndarray]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(rows, cols, figsize=(1.6 * cols, 1.6 * rows), squeeze=False)
    for ax in axes.flat:
        ax.set_xticks([])
        ax.set_yticks([])
    return fig, axes


def grow_from_maps(yg: np.ndarray, ys: np.ndarray, t_max: int = 8) -> np.ndarray:
    """The image grown from predicted seeds: ``develop(t_max, code(yg + 1, ys + 1))`` binarised."""
    board = np.asarray(pg.code(np.asarray(yg, dtype=np.int64) + 1, np.asarray(ys, dtype=np.int64) + 1))
    return ((pg.develop(t_max, board) - 1) > 0).astype(float)


@torch.no_grad()
def samples_figure(
    model: nn.Module, x: torch.Tensor, y0: torch.Tensor, yg0: torch.Tensor, ys0: torch.Tensor
) -> bytes:
    """Rows = samples; columns image | grown from the true seeds | grown from the predicted seeds."""
    y, yg, ys = model(x)
    fig, axes = _figure(len(x), 3)
    for r in range(len(x)):
        truth = grow_from_maps(yg0[r].numpy(), ys0[r].numpy())
        pred = grow_from_maps(yg[r].argmax(0).numpy(), ys[r].argmax(0).numpy())
        for c, (img, title) in enumerate(
            (
                (x[r, 0].numpy(), f"class {int(y0[r])}"),
                (truth, "true seeds"),
                (pred, f"predicted ({int(y[r].argmax())})"),
            )
        ):
            axes[r, c].imshow(img, cmap="gray")
            axes[r, c].set_title(title, fontsize=7)
    return _png(fig)


def _normalised(maps: torch.Tensor) -> np.ndarray:
    a = maps.detach().sum(dim=0).numpy()  # over input channels (1 here)
    m = float(np.abs(a).max())
    return a / m if m > 0 else a


def _maps(model: nn.Module, x: torch.Tensor, target: Any) -> dict[str, np.ndarray]:
    out = {}
    for title, (method, params) in METHODS.items():
        heat = explain(model, x, {method: params}, target)[method]
        out[title] = _normalised(heat[0])
    return out


def _row(
    axes: np.ndarray,
    r: int,
    image: np.ndarray,
    label: str,
    maps: dict[str, np.ndarray],
    mark: tuple[int, int] | None = None,
) -> None:
    axes[r, 0].imshow(image, cmap="gray")
    axes[r, 0].set_title(label, fontsize=7)
    if mark is not None:
        axes[r, 0].plot([mark[1]], [mark[0]], "r+", markersize=8)
    for c, (title, a) in enumerate(maps.items(), start=1):
        axes[r, c].imshow(a, cmap="bwr", vmin=-1, vmax=1)
        axes[r, c].set_title(title, fontsize=6)


def class_heatmaps_figure(model: nn.Module, x: torch.Tensor, y0: torch.Tensor) -> bytes:
    """Rows = samples (one per class); target = the true class on ``y``."""
    fig, axes = _figure(len(x), 1 + len(METHODS))
    for r in range(len(x)):
        maps = _maps(model, x[r : r + 1], int(y0[r]))
        _row(axes, r, x[r, 0].numpy(), f"y = {int(y0[r])}", maps)
    return _png(fig)


def seed_pixels(yg: np.ndarray, limit: int) -> list[tuple[int, int]]:
    """The (row, col) of the non-empty generator pixels (at most ``limit``, row-major)."""
    return [(int(i), int(j)) for i, j in zip(*np.nonzero(yg > 0), strict=True)][:limit]


def component_heatmaps(
    model: nn.Module, x: torch.Tensor, yg0: torch.Tensor, ys0: torch.Tensor, limit: int = 6
) -> dict[str, bytes]:
    """The General Pattern Theory ``heatmapsGC`` for one sample ``x`` (1, 1, H, W): figures ``yg0``, ``yg``,
    ``ys0``, ``ys`` (true / predicted seed pixels), one row per pixel."""
    with torch.no_grad():
        _, yg, ys = model(x)
    pred_g, pred_s = yg[0].argmax(0).numpy(), ys[0].argmax(0).numpy()
    true_g, true_s = yg0.numpy(), ys0.numpy()
    figures: dict[str, bytes] = {}
    for key, output, pixels_of, classes in (
        ("yg0", "yg", true_g, true_g),
        ("yg", "yg", pred_g, pred_g),
        ("ys0", "ys", true_g, true_s),
        ("ys", "ys", pred_g, pred_s),
    ):
        pixels = seed_pixels(pixels_of, limit)
        if not pixels:
            continue
        fig, axes = _figure(len(pixels), 1 + len(METHODS))
        for r, (i, j) in enumerate(pixels):
            target = Component(output, i, j, int(classes[i, j]))
            _row(
                axes,
                r,
                x[0, 0].numpy(),
                f"{output}[{int(classes[i, j])}] at ({i},{j})",
                _maps(model, x, target),
                mark=(i, j),
            )
        figures[key] = _png(fig)
    return figures


def write_report(
    out: Path,
    title: str,
    sections: Sequence[tuple[str, Sequence[str]]],
    *,
    verdict: str = "",
    config: dict[str, object] | None = None,
) -> Path:
    """``out/index.html``: the verdict paragraph first, then one heading per section with its PNGs
    (file names relative to ``out``), the run configuration last and collapsed."""
    body = [f"<h1>{html.escape(title)}</h1>"]
    if verdict:
        body.append(f"<p><b>{html.escape(verdict)}</b></p>")
    for heading, files in sections:
        body.append(f"<h2>{html.escape(heading)}</h2>")
        body += [f'<img src="{html.escape(f)}" alt="{html.escape(f)}" style="max-width:100%">' for f in files]
    if config:
        rows = "".join(
            f"<tr><th>{html.escape(str(k))}</th><td>{html.escape(str(v))}</td></tr>"
            for k, v in config.items()
        )
        body.append(f"<details><summary>Run configuration</summary><table>{rows}</table></details>")
    page = (
        "<!doctype html><html><head><meta charset='utf-8'><title>"
        + html.escape(title)
        + "</title></head><body>"
        + "\n".join(body)
        + "</body></html>\n"
    )
    path = out / "index.html"
    atomic_write_text(path, page)
    return path


def save(out: Path, name: str, png: bytes) -> str:
    atomic_write_bytes(out / name, png)
    return name
