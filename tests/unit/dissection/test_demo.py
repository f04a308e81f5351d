"""The demo's dissection section: a pattern-theory model dissected against its generator's concept maps,
the counts of units that found their concept (recomputed from the results), a summary page, and one
link from the demo report however often the demo runs."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest

from xai_serve.app.dissection_section import FOUND_IOU, SUMMARY, demo_section
from xai_serve.data.pattern_concepts import CONCEPTS

RECIPE = """name = "gpt_tiny"
epochs = 1
[model]
name = "resgptnet_small"
[data]
name = "pattern_digits"
split_seed = 2
options = { size = { train = 8, val = 8, test = 24 } }
"""


@pytest.fixture(scope="module")
def gpt_checkpoint(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from xai_serve.testing import write_gpt_checkpoint

    ckpt = write_gpt_checkpoint(tmp_path_factory.mktemp("gpt") / "ckpt", width=4)
    (ckpt / "recipe.toml").write_text(RECIPE)
    return ckpt


def test_demo_section_dissects_against_the_generator_and_links_once(
    tmp_path: Path, gpt_checkpoint: Path, render_report
) -> None:
    demo_report = tmp_path / "demo" / "report.html"
    demo_report.parent.mkdir()
    demo_report.write_text("<html><body><h1>demo</h1></body></html>")
    figures = demo_section(gpt_checkpoint, demo_report)
    run = tmp_path / "demo" / "dissection" / "run"
    assert figures.report == run / "report.html" and figures.report.is_file()
    assert figures.layer == "cf" and figures.units == 4 and figures.images == 24  # the recipe's test split
    with open(run / "results.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == 4
    concepts = {c for names in CONCEPTS.values() for c in names} | {"NONE"}
    assert {r["single"] for r in rows} <= concepts
    assert figures.found_single == sum(float(r["single_iou"]) >= FOUND_IOU for r in rows)
    assert figures.found_formula == sum(float(r["iou"]) >= FOUND_IOU for r in rows)
    text = demo_report.read_text()
    assert 'href="dissection/index.html"' in text and text.endswith("</body></html>")
    assert f"{figures.found_single}/4 units of cf found" in text
    demo_section(gpt_checkpoint, demo_report)  # a second demo run replaces its paragraph
    assert demo_report.read_text().count('id="dissection"') == 1
    page = render_report(tmp_path / "demo" / "dissection" / SUMMARY)
    assert page.images and all(i["naturalWidth"] > 0 for i in page.images), page.images
    assert page.console_errors == []
    assert page.text.index("of 4 units found a concept") < page.text.index("Each concept's best unit")
