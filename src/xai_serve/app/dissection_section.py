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
``xai dissect demo`` runs it alone; about 10 s on two cores.
"""

from __future__ import annotations

import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from xai_serve.data.broden import decode_segmentation
from xai_serve.data.broden_writer import label_numbers
from xai_serve.data.pattern_concepts import CATEGORY_MEANING, CONCEPTS, TRANSFORMATIONS, TYPES

DEMO_LAYER = "cf"
QUANTILE = 0.02
FOUND_IOU = 0.2
UNITS_PER_PART = 16


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
            f"transformation (single-concept IoU >= {FOUND_IOU}), {self.found_formula}/{self.units} "
            f"a formula of up to three of them, on {self.images} pattern digits"
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


def read_figures(report: Path, images: int) -> DissectionFigures:
    """The figures of a finished dissection run (its ``results.csv`` next to ``report``)."""
    from xai_serve.dissection.report import read_results

    rows = read_results(report.parent / "results.csv")
    return DissectionFigures(
        report=report,
        layer=rows[0]["layer"] if rows else DEMO_LAYER,
        units=len(rows),
        images=images,
        single=[(r["single"], float(r["single_iou"])) for r in rows],
        formula=[(r["formula"], r["iou"]) for r in rows],
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
        units_per_part=UNITS_PER_PART,
        top_images=4,
    )
    dissect(out_dir / "run", config, overwrite=True, log=log)  # fresh: the weights may have changed
    figures = read_figures(out_dir / "run" / "report.html", images)
    log(f"{figures.summary()} ({time.perf_counter() - tic:.1f} s)")
    for concept, (unit, iou) in sorted(figures.best_unit().items()):
        log(f"  {concept}: unit {unit}, IoU {iou:.3f}")
    return figures


SUMMARY = "index.html"
PALETTE = np.array(
    [
        (0, 0, 0),
        (230, 25, 75),
        (60, 180, 75),
        (255, 225, 25),
        (0, 130, 200),
        (245, 130, 48),
        (145, 30, 180),
        (70, 240, 240),
        (240, 50, 230),
    ],
    np.uint8,
)  # background, then one colour per type / transformation


def concept_picture(concepts: Path, n: int = 4, scale: int = 6) -> bytes:
    """The first ``n`` probing images, each above its generator-type map and its transformation map
    (coloured as in the page's legend), as one PNG."""
    import io

    from PIL import Image

    from xai_serve.data.broden import BrodenDataset

    dataset = BrodenDataset(concepts)
    columns = []
    for i in range(min(n, len(dataset))):
        grey = np.asarray(dataset.image(i).convert("L"))
        tiles = [np.repeat(grey[..., None], 3, axis=2)]
        for category in ("object", "part"):
            seg = decode_segmentation(concepts / "images" / dataset.rows[i].pixel[category][0])
            first = label_numbers(CONCEPTS)[CONCEPTS[category][0]]  # the category's first label
            tiles.append(PALETTE[np.where(seg > 0, seg - first + 1, 0)])
        column = np.concatenate(
            [t for tile in tiles for t in (tile, np.full((2, grey.shape[1], 3), 255, np.uint8))][:-1]
        )
        columns += [column, np.full((column.shape[0], 2, 3), 255, np.uint8)]
    picture = np.concatenate(columns[:-1], axis=1).repeat(scale, 0).repeat(scale, 1)
    buf = io.BytesIO()
    Image.fromarray(picture).save(buf, format="PNG")
    return buf.getvalue()


def write_summary(figures: DissectionFigures, out_dir: Path, concepts: Path) -> Path:
    """``out_dir/index.html``: the verdict (how many units found their concept), what the concepts
    are (an illustration), each concept's best unit and each unit's best concept and formula, linked
    to the full dissection report."""
    import html

    from xai_serve.atomic import atomic_write_bytes, atomic_write_text
    from xai_serve.dissection.layout import part_name, part_ranges

    esc = html.escape
    atomic_write_bytes(out_dir / "concepts.png", concept_picture(concepts))
    run = figures.report.parent.relative_to(out_dir).as_posix()
    page_of = {
        u: part_name(lo, hi) for lo, hi in part_ranges(figures.units, UNITS_PER_PART) for u in range(lo, hi)
    }
    best = figures.best_unit()

    def unit(u: int) -> str:
        return f"<a href='{esc(run)}/report/{page_of[u]}.html#unit{u}'>{u}</a>"

    def swatch(j: int) -> str:
        return f"<span class='sw' style='background:rgb{tuple(int(v) for v in PALETTE[j])}'></span>"

    legend = "<br>".join(
        "".join(f"{swatch(j)}{esc(name)} " for j, name in enumerate(names, 1))
        for names in (TYPES.values(), TRANSFORMATIONS.values())
    )
    concept_rows = []
    for category, names in CONCEPTS.items():
        for c in names:
            found = (
                f"<td>{unit(best[c][0])}</td><td>{best[c][1]:.3f}</td>"
                f"<td>{'yes' if best[c][1] >= FOUND_IOU else 'no'}</td>"
                if c in best
                else "<td>-</td><td>-</td><td>no unit's best concept</td>"
            )
            concept_rows.append(
                f"<tr><td>{esc(c)}</td><td>{esc(CATEGORY_MEANING[category])}</td>{found}</tr>"
            )
    unit_rows = "".join(
        f"<tr><td>{unit(u)}</td><td>{esc(c)}</td>"
        f"<td>{iou:.3f}</td><td><code>{esc(f)}</code></td><td>{fiou:.3f}</td></tr>"
        for u, ((c, iou), (f, fiou)) in enumerate(zip(figures.single, figures.formula, strict=True))
    )
    page = f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>dissection of the pattern-theory model</title>
<link rel="icon" href="data:,">
<style>body{{font-family:sans-serif;margin:1.5em;max-width:1100px}} table{{border-collapse:collapse}}
td,th{{border:1px solid #ccc;padding:3px 8px;text-align:left}} img{{image-rendering:pixelated;max-width:100%}}
.verdict{{background:#eef6ee;border-left:4px solid #2a7;padding:0.6em 1em}}
.sw{{display:inline-block;width:12px;height:12px;margin:0 3px 0 8px;border:1px solid #888}}</style>
</head><body>
<h1>Network dissection of the General Pattern Theory model (layer <code>{esc(figures.layer)}</code>)</h1>
<p class="verdict"><b>{figures.found_single} of {figures.units} units found a concept of the generator</b>
(their mask's IoU with one generator type or transformation is at least {FOUND_IOU});
{figures.found_formula} of {figures.units} with a formula of up to three concepts.
Dissected on the model's {figures.images} test pattern digits; each unit's mask keeps the top
{100 * QUANTILE:g} % of its activations.</p>
<h2>The concepts: what made each pixel</h2>
<p>The pattern digits are grown from seed generators (General Pattern Theory): every stroke pixel was
placed by a generator of one <i>type</i> (2 the seed generator, 3, 4 the terminal) under one
<i>transformation</i> (the bond-symmetry-group element 1..8 that oriented it; 1 and 5, 2 and 6, 3 and 7,
4 and 8 are opposite directions). The generator knows both per pixel, so the right answer is known.
Below: probing images, their type maps and their transformation maps.</p>
<p><img src="concepts.png" alt="probing images with their type and transformation maps"></p>
<p>{legend}</p>
<h2>Each concept's best unit</h2>
<table><tr><th>concept</th><th>kind</th><th>unit</th><th>IoU</th><th>found (IoU &ge; {FOUND_IOU})</th></tr>
{"".join(concept_rows)}</table>
<h2>Each unit's best concept and formula</h2>
<table><tr><th>unit</th><th>single concept</th><th>IoU</th><th>formula</th><th>IoU</th></tr>
{unit_rows}</table>
<p>The full dissection report (top images with each unit's mask, the search history):
<a href="{esc(run)}/report.html">{esc(run)}/report.html</a>.</p>
</body></html>
"""
    atomic_write_text(out_dir / SUMMARY, page)
    return out_dir / SUMMARY


def demo_section(checkpoint: Path | None, demo_report: Path) -> DissectionFigures:
    """``make demo``'s dissection step: dissect into ``<demo>/dissection/`` and link the result from
    the demo report, with how many units found their concept."""
    from xai_serve.app.report_links import link_from_report

    out_dir = demo_report.parent / "dissection"
    figures = dissect_pattern_model(checkpoint, out_dir)
    summary = write_summary(figures, out_dir, out_dir / "concepts")
    link_from_report(
        demo_report,
        summary,
        f"Network dissection of the pattern-theory model's layer {figures.layer}",
        anchor="dissection",
        note=f"against its own generator's concept maps: {figures.summary()} "
        "(each concept's best unit, each unit's concept formula and IoU, top images with the unit's mask).",
    )
    return figures
