"""Suite ``basic``: accuracy, per-class precision / recall / F1, predictions, confusion matrix.

Outputs: ``predictions.csv`` (one row per sample), with ``--misclassified`` the images the model gets
wrong (``misclassified/<index>_true<c>_pred<c>.png``, dataset index, true and predicted class; the
names ``xai train`` gives them, for any checkpoint), ``basic.csv`` (one row per class),
``basic_summary.csv`` (mean / std over classes, accuracy), ``basic.json``, ``confusion_matrix.png``;
for a model with component outputs (:mod:`xai_serve.models.multi_output`) and a dataset with their
ground-truth maps, also the per-sample pixel metrics of each component map (``basic_pixels.csv``,
``basic_pixels_summary.csv``; General Pattern Theory, Tjoa & Guan, docs/methods.md#gpt-pixel-metrics).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from xai_serve.evaluation.batches import concat, run_batches
from xai_serve.evaluation.csv_rows import as_float, read_rows
from xai_serve.evaluation.options import opt
from xai_serve.evaluation.pixel_metrics import pixel_metrics, summarise
from xai_serve.evaluation.registry import Suite, register_suite
from xai_serve.evaluation.store import write_csv, write_json
from xai_serve.jobs.rundir import RunDir

if TYPE_CHECKING:
    import torch
    from torch import nn

    from xai_serve.evaluation.context import EvalContext


@dataclass
class BasicOptions:
    seed_parity: bool = opt(False, "the General Pattern Theory code's swapped precision/recall labels")
    batch_size: int = opt(256, "images per batch")
    misclassified: bool = opt(
        False, "also write the misclassified images as misclassified/<index>_true<c>_pred<c>.png"
    )


def write_misclassified(
    ctx: EvalContext, run: RunDir, index: np.ndarray, label: np.ndarray, pred: np.ndarray
) -> int:
    """The wrongly predicted samples as PNGs in the run's ``misclassified/``; returns their count."""
    from xai_serve.atomic import atomic_write_bytes
    from xai_serve.training.reports import image_png, misclassified_name

    position = {int(i): p for p, i in enumerate(ctx.indices.tolist())}
    wrong = [(int(i), int(t), int(p)) for i, t, p in zip(index, label, pred, strict=True) if t != p]
    folder = run.path("misclassified", "x").parent
    for i, t, p in wrong:
        k = position[i]
        pixels = ctx.denormalise(ctx.images[k : k + 1])[0]
        atomic_write_bytes(folder / misclassified_name(i, t, p), image_png(pixels))
    return len(wrong)


def run_basic(ctx: EvalContext, run: RunDir, opts: BasicOptions, seed: int = 0) -> dict[str, Any]:
    import torch

    from xai_serve.evaluation import plots
    from xai_serve.evaluation.basic import accuracy, per_class_metrics, summary

    @torch.no_grad()
    def compute(i: int, sl: slice) -> dict[str, np.ndarray]:
        x, y = ctx.batch(sl)
        probs = torch.softmax(ctx.model(x), dim=1)
        return {"index": ctx.indices[sl].numpy(), "label": y.cpu().numpy(), "probs": probs.cpu().numpy()}

    parts = run_batches(run, ctx, opts.batch_size, compute, "basic")
    index, label, probs = concat(parts, "index"), concat(parts, "label"), concat(parts, "probs")
    pred = probs.argmax(axis=1)
    names = ctx.label_names
    write_csv(
        run.path("predictions.csv"),
        (
            {
                "index": int(i),
                "label": int(t),
                "predicted": int(p),
                "confidence": float(pr[p]),
                "correct": int(t == p),
            }
            for i, t, p, pr in zip(index, label, pred, probs, strict=True)
        ),
    )
    rows = per_class_metrics(label, pred, names, seed_parity=opts.seed_parity)
    write_csv(run.path("basic.csv"), rows)
    acc = accuracy(label, pred)
    write_csv(run.path("basic_summary.csv"), summary(rows, acc))
    cm = np.zeros((len(names), len(names)), dtype=np.int64)
    np.add.at(cm, (label, pred), 1)
    plots.confusion_matrix(cm, names, run.path("confusion_matrix.png"))
    result: dict[str, Any] = {"accuracy": acc, "n": int(label.size), "seed_parity": opts.seed_parity}
    if opts.misclassified:
        result["misclassified"] = write_misclassified(ctx, run, index, label, pred)
    if ctx.full_model is not None and ctx.components:  # a model with component outputs: their maps
        result["pixels"] = run_pixel_metrics(ctx, run, opts.seed_parity, opts.batch_size)
    write_json(run.path("basic.json"), result)
    return result


def predicted_maps(model: nn.Module, x: torch.Tensor) -> dict[str, torch.Tensor]:
    """Arg-max channel maps (B, H, W) of ``model``'s component outputs, by output name."""
    import torch

    from xai_serve.models.multi_output import output_names

    with torch.no_grad():
        outputs = model(x)
    names = output_names(model)
    return {name: out.argmax(dim=1) for name, out in zip(names[1:], outputs[1:], strict=True)}


def run_pixel_metrics(ctx: EvalContext, run: RunDir, seed_parity: bool, batch_size: int) -> dict[str, Any]:
    """Per-sample pixel metrics (:mod:`xai_serve.evaluation.pixel_metrics`) of every component output
    of ``ctx.full_model`` against the dataset's ground-truth maps ``ctx.components``: writes
    ``basic_pixels.csv`` (one row per sample: ``yg_acc, yg_precision, yg_recall, ys_...``; with the
    parity switch also ``*_precision_true`` / ``*_recall_true``) and ``basic_pixels_summary.csv``
    (rows ``mean`` / ``std``, population std). The predicted map of an output is its arg-max channel."""
    assert ctx.full_model is not None
    rows: list[dict[str, float]] = []
    for _, sl in ctx.batches(batch_size):
        x, _ = ctx.batch(sl)
        maps = predicted_maps(ctx.full_model, x)
        for j in range(x.shape[0]):
            row: dict[str, float] = {}
            for name, truth in ctx.components.items():
                m = pixel_metrics(truth[sl][j].numpy(), maps[name][j].cpu().numpy(), seed_parity=seed_parity)
                row.update({f"{name}_{k}": v for k, v in m.items()})
            rows.append(row)
    write_csv(run.path("basic_pixels.csv"), rows)
    stats = summarise(rows)
    write_csv(run.path("basic_pixels_summary.csv"), [{"stat": s, **stats[s]} for s in ("mean", "std")])
    return stats["mean"]


def verdict(root: Path) -> str | None:
    rows = {r["stat"]: r for r in read_rows(root / "basic_summary.csv") if "stat" in r}
    per_class = read_rows(root / "basic.csv")
    if "mean" not in rows:
        return None
    acc = as_float(rows["mean"].get("accuracy", ""))
    text = f"Accuracy {acc:.1%} on {len(read_rows(root / 'predictions.csv'))} samples."
    if per_class and "f1" in per_class[0]:
        worst = min(per_class, key=lambda r: as_float(r["f1"]))
        text += (
            f" Weakest class: {worst.get('class', worst.get('label', '?'))} (F1 {as_float(worst['f1']):.2f})."
        )
    return text


SUITE = register_suite(
    Suite(
        name="basic",
        help="Accuracy, per-class precision/recall/F1 (basic.csv, basic_summary.csv), predictions.",
        options=BasicOptions,
        run=run_basic,
        uses_methods=False,
        defaults={"samples": None},
        verdict=verdict,
    )
)
