"""The demo's GPT section (seed A): a small ResGPTNet trained on first use (``training/gpt_demo.toml``
into ``runs/gpt_demo``, kept afterwards), archived as ``model_store/gpt.mar``, and a page
``demo/gpt/index.html`` with its class heatmaps and component heatmaps at a few seed pixels, linked
from the demo report."""

from __future__ import annotations

import html
import json
import time
from pathlib import Path
from typing import Any

RECIPE = Path("training") / "gpt_demo.toml"
CHECKPOINT = Path("runs") / "gpt_demo"
CLASSES = (0, 3, 8)
PIXELS = 3


def gpt_section(report: Path, *, store: Path = Path("model_store"), log: Any = print) -> Path:
    """Train (first use) / reuse, archive and draw the GPT model; link the page from ``report``."""
    from xai_serve.app.demo import ensure_default_model
    from xai_serve.pattern_theory.commands import gpt_figures
    from xai_serve.serving.archive import ArchiveOptions, build_archive

    tic = time.perf_counter()
    ckpt = ensure_default_model(RECIPE, CHECKPOINT)
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
    _link(
        report,
        "gpt/index.html",
        f"GPT model (seed A): class and component heatmaps, test accuracy {metrics['accuracy']:.3f}",
    )
    return page


def _link(report: Path, href: str, title: str) -> None:
    from xai_serve.atomic import atomic_write_text

    text = report.read_text(encoding="utf-8")
    link = f'<p><a href="{href}">{html.escape(title)}</a></p>'
    if href in text or "</body>" not in text:
        return
    atomic_write_text(report, text.replace("</body>", f"{link}\n</body>", 1))
