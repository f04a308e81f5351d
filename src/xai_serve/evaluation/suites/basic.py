"""Suite ``basic``: accuracy, per-class precision / recall / F1, predictions, confusion matrix.

Outputs: ``predictions.csv`` (one row per sample), ``basic.csv`` (one row per class),
``basic_summary.csv`` (mean / std over classes, accuracy), ``basic.json``, ``confusion_matrix.png``.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from xai_serve.evaluation import plots
from xai_serve.evaluation.basic import accuracy, per_class_metrics, summary
from xai_serve.evaluation.context import EvalContext
from xai_serve.evaluation.specs.basic import BasicOptions
from xai_serve.evaluation.store import write_csv, write_json
from xai_serve.evaluation.suites.common import concat, run_batches
from xai_serve.jobs.rundir import RunDir


def run_basic(ctx: EvalContext, run: RunDir, opts: BasicOptions, seed: int = 0) -> dict[str, Any]:
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
    if ctx.full_model is not None and ctx.components:  # seed A: per-sample yg/ys pixel metrics (A.5)
        from xai_serve.pattern_theory.evaluation import run_pixel_metrics

        result["pixels"] = run_pixel_metrics(ctx, run, opts.seed_parity, opts.batch_size)
    write_json(run.path("basic.json"), result)
    return result
