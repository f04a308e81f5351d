"""What a training run leaves for a person: metrics.json, history.csv, confusion-matrix and
misclassified-image PNGs (the SimpleNet study's dumps). All files are written atomically."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from xai_serve.atomic import atomic_write_bytes, atomic_write_text

HISTORY_FIELDS = ["epoch", "lr", "train_loss", "train_acc", "val_loss", "val_acc", "seconds", "best"]


def classification_metrics(y_true: np.ndarray, y_pred: np.ndarray, labels: Sequence[str]) -> dict[str, Any]:
    """Accuracy, per-class precision/recall/F1/support and the confusion matrix (scikit-learn)."""
    from sklearn.metrics import accuracy_score, confusion_matrix, precision_recall_fscore_support

    classes = list(range(len(labels)))
    precision, recall, f1, support = precision_recall_fscore_support(
        y_true, y_pred, labels=classes, zero_division=0
    )
    return {
        "accuracy": float(accuracy_score(y_true, y_pred)),
        "n": len(y_true),
        "per_class": {
            labels[c]: {
                "precision": float(precision[c]),
                "recall": float(recall[c]),
                "f1": float(f1[c]),
                "support": int(support[c]),
            }
            for c in classes
        },
        "macro_f1": float(np.mean(f1)),
        "confusion_matrix": confusion_matrix(y_true, y_pred, labels=classes).tolist(),
    }


def write_json(path: Path, data: dict[str, Any]) -> None:
    atomic_write_text(path, json.dumps(data, indent=2) + "\n")


def write_history(path: Path, rows: Sequence[dict[str, Any]]) -> None:
    buffer = io.StringIO()
    extra = [k for row in rows for k in row if k not in HISTORY_FIELDS]  # e.g. per-output losses
    fields = list(HISTORY_FIELDS) + list(dict.fromkeys(extra))
    writer = csv.DictWriter(buffer, fieldnames=fields, lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    atomic_write_text(path, buffer.getvalue())


def _png(figure: Any) -> bytes:
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=100, bbox_inches="tight")
    return buffer.getvalue()


def write_confusion_png(
    path: Path, matrix: Sequence[Sequence[int]], labels: Sequence[str], title: str
) -> None:
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib.figure import Figure

    cm = np.asarray(matrix)
    n = len(labels)
    fig = Figure(figsize=(1.0 + 0.55 * n, 0.8 + 0.55 * n))
    ax = fig.add_subplot()
    ax.imshow(cm, cmap="Blues")
    ax.set_xticks(range(n), labels, rotation=45 if max(map(len, labels)) > 2 else 0)
    ax.set_yticks(range(n), labels)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    ax.set_title(title)
    threshold = cm.max() / 2 if cm.size else 0
    for i in range(n):
        for j in range(n):
            ax.text(
                j,
                i,
                str(cm[i, j]),
                ha="center",
                va="center",
                fontsize=8,
                color="white" if cm[i, j] > threshold else "black",
            )
    atomic_write_bytes(path, _png(fig))


def image_png(pixels: torch.Tensor) -> bytes:
    """PNG bytes of a [C, H, W] image with values in [0, 1] (C = 1 grey, C = 3 RGB)."""
    from PIL import Image

    array = (pixels.clamp(0, 1) * 255).round().to(torch.uint8).cpu()
    if array.shape[0] == 1:
        image = Image.fromarray(array[0].numpy(), mode="L")
    else:
        image = Image.fromarray(array[:3].permute(1, 2, 0).numpy(), mode="RGB")
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()


def misclassified_name(index: int, true: int, pred: int) -> str:
    """``00017_true3_pred8.png``: test-set index, true and predicted class index."""
    return f"{index:05d}_true{true}_pred{pred}.png"
