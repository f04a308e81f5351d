"""The demo's GPT section (General Pattern Theory): a small ResGPTNet trained on first use
(``training/gpt_demo.toml`` into ``runs/gpt_demo``, kept afterwards), archived as ``model_store/gpt.mar``, and
a page ``demo/gpt/index.html`` with its class heatmaps and component heatmaps at a few seed pixels, linked
from the demo report."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

CLASSES = (0, 3, 8)
PIXELS = 3


def gpt_section(report: Path, *, store: Path = Path("model_store"), log: Any = print) -> Path:
    """Train (first use) / reuse, archive and draw the GPT model; link the page from ``report``."""
    from xai_serve.app.default_model import PATTERN_THEORY
    from xai_serve.app.report_links import link_from_report
    from xai_serve.pattern_theory.commands import gpt_figures
    from xai_serve.serving.archive import ArchiveOptions, build_archive

    tic = time.perf_counter()
    ckpt = PATTERN_THEORY.ensure()
    metrics = json.loads((ckpt / "metrics.json").read_text(encoding="utf-8"))
    log(
        f"GPT model {ckpt}: test accuracy {metrics['accuracy']:.4f} on {metrics['n']} pattern digits "
        f"({time.perf_counter() - tic:.1f} s)"
    )
    mar = build_archive(ckpt, "gpt", store=store, options=ArchiveOptions(batch_size=4, max_batch_delay_ms=5))
    log(f"archived {mar} (outputs y, yg, ys; component targets such as yg:14,9:predicted)")
    page = gpt_figures(
        ckpt, report.parent / "gpt", sections=("heatmaps", "heatmapsGC"), classes=CLASSES, pixels=PIXELS
    )
    link_from_report(
        report,
        page,
        "General Pattern Theory model (ResGPTNet on the pattern digits)",
        anchor="pattern-theory",
        note=f"class and component heatmaps; test accuracy {metrics['accuracy']:.3f}",
    )
    return page
