"""``xai evaluate basic`` on a GPT model: seed A's per-sample yg/ys pixel metrics (methods.md A.5).

Writes ``basic_pixels.csv`` (one row per sample: ``yg_acc, yg_precision, yg_recall, ys_...``; with the
parity switch also ``*_precision_true`` / ``*_recall_true``) and ``basic_pixels_summary.csv`` (rows
``mean`` / ``std``, population std). The predicted map of an output is its arg-max channel per pixel.
"""

from __future__ import annotations

from typing import Any

import torch

from xai_serve.evaluation.context import EvalContext
from xai_serve.evaluation.store import write_csv
from xai_serve.jobs.rundir import RunDir
from xai_serve.pattern_theory.metrics import pixel_metrics, summarise


@torch.no_grad()
def predicted_maps(model: torch.nn.Module, x: torch.Tensor, names: list[str]) -> dict[str, torch.Tensor]:
    """Arg-max channel maps (B, H, W) of the named outputs (``names[0]`` is the classifier)."""
    outputs = model(x)
    return {name: out.argmax(dim=1) for name, out in zip(names[1:], outputs[1:], strict=False)}


def run_pixel_metrics(ctx: EvalContext, run: RunDir, seed_parity: bool, batch_size: int) -> dict[str, Any]:
    assert ctx.full_model is not None
    names = ["y", *ctx.components]
    rows: list[dict[str, float]] = []
    for _, sl in ctx.batches(batch_size):
        x, _ = ctx.batch(sl)
        maps = predicted_maps(ctx.full_model, x, names)
        for j in range(x.shape[0]):
            row: dict[str, float] = {}
            for name, truth in ctx.components.items():
                m = pixel_metrics(truth[sl][j].numpy(), maps[name][j].cpu().numpy(), seed_parity=seed_parity)
                row.update({f"{name}_{k}": v for k, v in m.items()})
            rows.append(row)
    write_csv(run.path("basic_pixels.csv"), rows)
    summary = summarise(rows)
    write_csv(run.path("basic_pixels_summary.csv"), [{"stat": s, **summary[s]} for s in ("mean", "std")])
    return summary["mean"]
