"""PNG figures of the evaluation suites (matplotlib, Agg backend, written atomically)."""

from __future__ import annotations

import io
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from xai_serve.atomic import atomic_write_bytes


def _pyplot() -> Any:
    import matplotlib

    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    return plt


def save_figure(fig: Any, path: Path) -> None:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=100, metadata={"Software": None})
    _pyplot().close(fig)
    atomic_write_bytes(path, buf.getvalue())


def perturbation_curves(
    curves: dict[tuple[str, str], np.ndarray],
    x: np.ndarray,
    xlabel: str,
    ylabel: str,
    title: str,
    path: Path,
    styles: dict[str, str] | None = None,
) -> None:
    """Mean curves keyed (method, variant): one colour per method, one line style per variant
    (default solid MoRF / dashed LeRF / dotted random), with std bands."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(7, 4.5))
    methods = list(dict.fromkeys(m for m, _ in curves))
    styles = styles or {"morf": "-", "lerf": "--", "random": ":"}
    for ci, method in enumerate(methods):
        for (m, order), c in curves.items():
            if m != method:
                continue
            mean, std = np.nanmean(c, axis=0), np.nanstd(c, axis=0)
            xs = x[: mean.size]
            ax.plot(xs, mean, styles.get(order, "-"), color=f"C{ci}", label=f"{method} {order}")
            ax.fill_between(xs, mean - std, mean + std, color=f"C{ci}", alpha=0.06)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    save_figure(fig, path)


def randomisation_curves(
    results: dict[tuple[str, str], dict[str, np.ndarray]],
    layer_names: Sequence[str],
    modes: Sequence[str],
    path: Path,
) -> None:
    """Adebayo et al. style: mean similarity per level (original, then layers top-down), per mode
    (rows) and similarity measure (columns), one line per method with std bands."""
    plt = _pyplot()
    measures = ("spearman", "spearman_abs", "ssim")
    fig, axes = plt.subplots(len(modes), 3, figsize=(15, 4 * len(modes)), squeeze=False)
    ticks = ["original", *layer_names]
    methods = list(dict.fromkeys(m for m, _ in results))
    for r, mode in enumerate(modes):
        for c, measure in enumerate(measures):
            ax = axes[r][c]
            for ci, method in enumerate(methods):
                v = results.get((method, mode), {}).get(measure)
                if v is None:
                    continue
                mean, std = np.nanmean(v, axis=1), np.nanstd(v, axis=1)
                xs = np.arange(mean.size)
                ax.plot(xs, mean, "o-", color=f"C{ci}", label=method, markersize=3)
                ax.fill_between(xs, mean - std, mean + std, color=f"C{ci}", alpha=0.15)
            ax.set_xticks(np.arange(len(ticks)))
            ax.set_xticklabels(ticks, rotation=60, ha="right", fontsize=7)
            ax.set_ylim(-1.1 if measure == "spearman" else -0.1, 1.1)
            ax.axhline(0, color="grey", lw=0.5)
            ax.set_title(f"{mode}: {measure.replace('_', ' ')}")
            ax.grid(alpha=0.3)
            if c == 0:
                ax.set_ylabel("similarity to original")
    axes[0][0].legend(fontsize=8)
    fig.tight_layout()
    save_figure(fig, path)


def randomisation_maps(maps: dict[str, np.ndarray], layer_names: Sequence[str], path: Path) -> None:
    """Grid of |attribution| of one sample: rows methods, columns levels (original, then top-down)."""
    plt = _pyplot()
    methods = list(maps)
    cols = len(layer_names) + 1
    fig, axes = plt.subplots(
        len(methods), cols, figsize=(1.3 * cols, 1.4 * len(methods) + 0.6), squeeze=False
    )
    for r, m in enumerate(methods):
        for c in range(cols):
            ax = axes[r][c]
            a = np.abs(maps[m][c])
            a = a.sum(axis=0) if a.ndim == 3 else a
            ax.imshow(a / (a.max() or 1.0), cmap="gray", vmin=0, vmax=1)
            ax.set_xticks([])
            ax.set_yticks([])
            if r == 0:
                ax.set_title((["original", *layer_names])[c], fontsize=6, rotation=45)
            if c == 0:
                ax.set_ylabel(m, fontsize=7)
    fig.tight_layout()
    save_figure(fig, path)


def _show_image(ax: Any, img: np.ndarray) -> None:
    if img.shape[0] == 1:
        ax.imshow(img[0], cmap="gray", vmin=0, vmax=1)
    else:
        ax.imshow(np.clip(img.transpose(1, 2, 0), 0, 1))
    ax.set_xticks([])
    ax.set_yticks([])


def feature_removal_figure(
    images: Sequence[np.ndarray],
    heatmap: np.ndarray,
    confidences: Sequence[np.ndarray],
    label: str,
    labels: Sequence[str],
    titles: Sequence[str],
    signed: bool,
    path: Path,
) -> None:
    """Original | heatmap | most relevant removed | least relevant removed, with class confidences."""
    plt = _pyplot()
    fig, axes = plt.subplots(2, 4, figsize=(12, 5.2), gridspec_kw={"height_ratios": [3, 1.4]})
    panels = [images[0], None, images[1], images[2]]
    confs = [confidences[0], None, confidences[1], confidences[2]]
    for c in range(4):
        ax = axes[0][c]
        if c == 1:
            h = heatmap.sum(axis=0) if heatmap.ndim == 3 else heatmap
            lim = float(np.abs(h).max()) or 1.0
            ax.imshow(h, cmap="bwr" if signed else "hot", vmin=-lim if signed else 0, vmax=lim)
            ax.set_xticks([])
            ax.set_yticks([])
            ax.set_title(titles[1], fontsize=9)
            axes[1][c].axis("off")
            continue
        img, conf = panels[c], confs[c]
        assert img is not None and conf is not None
        _show_image(ax, img)
        pred = int(np.argmax(conf))
        ax.set_title(f"{titles[c]}\npred {labels[pred]} ({conf[pred]:.2f})", fontsize=9)
        bx = axes[1][c]
        bx.bar(np.arange(len(conf)), conf, color=["C1" if i == pred else "C0" for i in range(len(conf))])
        bx.set_ylim(0, 1)
        bx.set_xticks(np.arange(len(conf)))
        bx.set_xticklabels(labels, fontsize=6, rotation=90 if len(labels) > 10 else 0)
    fig.suptitle(f"true class {label}", fontsize=10)
    fig.tight_layout()
    save_figure(fig, path)


def confusion_matrix(cm: np.ndarray, labels: Sequence[str], path: Path) -> None:
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(6, 5))
    im = ax.imshow(cm, cmap="Blues")
    ax.set_xticks(np.arange(len(labels)))
    ax.set_xticklabels(labels, fontsize=7, rotation=90 if len(labels) > 10 else 0)
    ax.set_yticks(np.arange(len(labels)))
    ax.set_yticklabels(labels, fontsize=7)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    for i in range(cm.shape[0]):
        for j in range(cm.shape[1]):
            if cm[i, j]:
                ax.text(
                    j,
                    i,
                    str(int(cm[i, j])),
                    ha="center",
                    va="center",
                    fontsize=6,
                    color="white" if cm[i, j] > cm.max() / 2 else "black",
                )
    fig.colorbar(im, ax=ax)
    fig.tight_layout()
    save_figure(fig, path)
