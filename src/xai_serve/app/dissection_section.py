"""The dissection demo: the digits SimpleNet's ``features.36`` (64 units at 7x7, after the second
max-pool) dissected on a small synthetic Broden-format set (shapes, colours, parts, textures,
scenes). ``xai dissect demo`` runs it alone; ``make demo`` calls :func:`run_dissection_demo` and links
its report. About 20-40 s on two cores."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

DEMO_LAYER = "features.36"
DEMO_IMAGES = 120


def run_dissection_demo(
    checkpoint: Path | None = None,
    out_dir: Path = Path("dissect/demo"),
    log: Callable[[str], None] = lambda m: print(f"[dissect] {m}"),
    n_images: int = DEMO_IMAGES,
) -> Path:
    """Write the synthetic set (once) and dissect the layer; returns the report path."""
    from xai_serve.data.synthetic_broden import write_synthetic_broden
    from xai_serve.dissection.runner import DissectConfig, dissect

    if checkpoint is None:
        from xai_serve.app.demo import ensure_default_model

        checkpoint = ensure_default_model()
    tic = time.perf_counter()
    broden = out_dir / "broden"
    if not (broden / "index.csv").is_file():
        write_synthetic_broden(broden, n_images, image_size=56, mask_size=28, seed=0)
    config = DissectConfig(
        checkpoint=str(checkpoint), broden=str(broden), layer=DEMO_LAYER, units_per_part=16, top_images=4
    )
    summary = dissect(out_dir / "run", config, overwrite=True, log=log)  # fresh: the weights may have changed
    assert summary is not None
    log(
        f"{summary['interpretable_units']}/{summary['units']} units with IoU >= 0.04, mean IoU "
        f"{summary['mean_iou']:.3f} (single concept {summary['mean_single_iou']:.3f}) "
        f"in {time.perf_counter() - tic:.1f} s"
    )
    return out_dir / "run" / "report.html"


def demo_section(checkpoint: Path, demo_report: Path, n_images: int = DEMO_IMAGES) -> Path:
    """``make demo``'s dissection step: dissect into ``<demo>/dissection/`` and link the result from
    the demo report. Returns the dissection report."""
    report = run_dissection_demo(checkpoint, demo_report.parent / "dissection", n_images=n_images)
    link_from_report(demo_report, report)
    return report


def link_from_report(demo_report: Path, report: Path) -> None:
    """Insert a paragraph linking ``report`` before the demo report's ``</body>`` (once)."""
    import html

    from xai_serve.atomic import atomic_write_text

    rel = report.relative_to(demo_report.parent).as_posix()
    link = (
        f'<p id="dissection">Neuron dissection of <code>{html.escape(DEMO_LAYER)}</code> on a synthetic '
        f'Broden-format set: <a href="{html.escape(rel)}">{html.escape(rel)}</a> '
        "(each unit's concept formula and IoU, top images with the unit's mask).</p>"
    )
    text = demo_report.read_text(encoding="utf-8")
    if 'id="dissection"' not in text:
        text = text.replace("</body>", link + "\n</body>", 1) if "</body>" in text else text + link
        atomic_write_text(demo_report, text)
