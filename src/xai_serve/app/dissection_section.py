"""The dissection section of ``make demo`` (NetDissect, Bau et al. 2017; compositional explanations,
Mu & Andreas 2020): the General Pattern Theory model (ResGPTNet, the demo's pattern-theory section
trains it into ``runs/gpt_demo``) is dissected against its own generator's concepts, where the right
answer is known.

The probing set is the model's test split of pattern digits with, per pixel, the generator type and
the transformation that placed it (:mod:`xai_serve.data.pattern_concepts`, Broden format). The layer
is ``cf``: the model's full-resolution path (28x28, one unit per channel) that feeds the per-pixel
generator-type and transformation heads. A unit *found* a concept when the IoU of its mask with the
concept (or, for formulas, with the best formula of up to three concepts) is at least
:data:`FOUND_IOU`. The unit masks keep the top :data:`QUANTILE` of each unit's activations: the
concepts cover 0.3-3 % of the pixels each (NetDissect's 0.5 % suits Broden's larger concepts).
``xai dissect demo`` runs it alone; about 5 s on two cores.
"""

from __future__ import annotations

import csv
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

DEMO_LAYER = "cf"
QUANTILE = 0.02
FOUND_IOU = 0.2


@dataclass
class DissectionFigures:
    """What the section found: per unit its best single concept and IoU, and its best formula and IoU."""

    report: Path
    layer: str
    units: int
    images: int
    single: list[tuple[str, float]]
    formula: list[tuple[str, float]]

    @property
    def found_single(self) -> int:
        return sum(iou >= FOUND_IOU for _, iou in self.single)

    @property
    def found_formula(self) -> int:
        return sum(iou >= FOUND_IOU for _, iou in self.formula)

    def best_unit(self) -> dict[str, tuple[int, float]]:
        """Concept -> (the unit whose best single concept it is with the highest IoU, that IoU)."""
        best: dict[str, tuple[int, float]] = {}
        for unit, (concept, iou) in enumerate(self.single):
            if iou > best.get(concept, (-1, -1.0))[1]:
                best[concept] = (unit, iou)
        return best

    def summary(self) -> str:
        return (
            f"{self.found_single}/{self.units} units of {self.layer} found a generator type or "
            f"transformation (single-concept IoU >= {FOUND_IOU}), {self.found_formula}/{self.units} a formula "
            f"of up to three of them, on {self.images} pattern digits"
        )


def probing_set(checkpoint: Path, root: Path) -> int:
    """Write the concept set of ``checkpoint``'s test split under ``root`` (afresh); returns its size.

    The images are exactly the checkpoint's test split (the recipe's split seed and test size)."""
    from xai_serve.data.pattern_concepts import write_pattern_concepts
    from xai_serve.data.pattern_digits import DEFAULT_SIZES
    from xai_serve.training import load_recipe

    data = load_recipe(checkpoint / "recipe.toml").data
    sizes = data.options.get("size", 0)
    size = int(sizes.get("test", 0) if isinstance(sizes, dict) else sizes) or DEFAULT_SIZES["test"]
    shutil.rmtree(root, ignore_errors=True)
    probs = data.options.get("class_probs")
    write_pattern_concepts(root, size, split="test", seed=data.split_seed, class_probs=probs)
    return size


def read_results(report: Path, images: int) -> DissectionFigures:
    """The figures of a finished dissection run (its ``results.csv`` next to ``report``)."""
    with open(report.parent / "results.csv", newline="", encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    return DissectionFigures(
        report=report,
        layer=rows[0]["layer"] if rows else DEMO_LAYER,
        units=len(rows),
        images=images,
        single=[(r["single"], float(r["single_iou"])) for r in rows],
        formula=[(r["formula"], float(r["iou"])) for r in rows],
    )


def run_dissection_demo(
    checkpoint: Path | None = None,
    out_dir: Path = Path("dissect/demo"),
    log: Callable[[str], None] = lambda m: print(f"[dissect] {m}"),
) -> Path:
    """Write the concept set and dissect the layer; returns the report path (``xai dissect demo``)."""
    return dissect_pattern_model(checkpoint, out_dir, log).report


def dissect_pattern_model(
    checkpoint: Path | None = None,
    out_dir: Path = Path("dissect/demo"),
    log: Callable[[str], None] = lambda m: print(f"[dissect] {m}"),
) -> DissectionFigures:
    """Dissect ``checkpoint`` (default: the demo's pattern-theory model, trained on first use) into
    ``out_dir/run`` against its concept set in ``out_dir/concepts``; logs and returns the figures."""
    from xai_serve.dissection.runner import DissectConfig, dissect

    if checkpoint is None:
        from xai_serve.app.default_model import PATTERN_THEORY

        checkpoint = PATTERN_THEORY.ensure()
    tic = time.perf_counter()
    concepts = out_dir / "concepts"
    images = probing_set(checkpoint, concepts)
    config = DissectConfig(
        checkpoint=str(checkpoint),
        broden=str(concepts),
        layer=DEMO_LAYER,
        quantile=QUANTILE,
        units_per_part=16,
        top_images=4,
    )
    dissect(out_dir / "run", config, overwrite=True, log=log)  # fresh: the weights may have changed
    figures = read_results(out_dir / "run" / "report.html", images)
    log(f"{figures.summary()} ({time.perf_counter() - tic:.1f} s)")
    for concept, (unit, iou) in sorted(figures.best_unit().items()):
        log(f"  {concept}: unit {unit}, IoU {iou:.3f}")
    return figures


def demo_section(checkpoint: Path | None, demo_report: Path) -> DissectionFigures:
    """``make demo``'s dissection step: dissect into ``<demo>/dissection/`` and link the result from
    the demo report, with how many units found their concept."""
    from xai_serve.app.report_links import link_from_report

    figures = dissect_pattern_model(checkpoint, demo_report.parent / "dissection")
    link_from_report(
        demo_report,
        figures.report,
        f"Network dissection of the pattern-theory model's layer {figures.layer}",
        anchor="dissection",
        note=f"against its own generator's concept maps: {figures.summary()} "
        "(each unit's concept formula and IoU, top images with the unit's mask).",
    )
    return figures
