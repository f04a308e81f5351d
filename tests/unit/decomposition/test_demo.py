"""The demo's decomposed section runs on a digits SimpleNet checkpoint and writes a linked page."""

from __future__ import annotations

import json
import time
from pathlib import Path

from xai_serve.app.decomposition_section import PAGE, decomposed_section, link_from_report
from xai_serve.decomposition.indices import load_indices


def test_section_writes_page_and_figures(tmp_path: Path, seed_e) -> None:
    ckpt = seed_e.write_digits_checkpoint(tmp_path / "ckpt")
    out = tmp_path / "demo"
    tic = time.perf_counter()
    figures = decomposed_section(ckpt, out, log=lambda _m: None, limit=300)
    assert time.perf_counter() - tic < 60
    assert 0 <= figures["original_accuracy"] <= 1 and 0 <= figures["decomposed_accuracy"] <= 1
    assert figures["finite"] and len(figures["filters"]) == 5
    assert all(
        len(s) == 5 for s in load_indices(out / "decomposed_indices.json", num_classes=10, num_filters=64)
    )
    page = (out / PAGE).read_text()
    assert "decomposed_explanation.png" in page and (out / "decomposed_explanation.png").stat().st_size > 0
    assert json.loads((out / "decomposed.json").read_text())["k"] == 5
    report = out / "report.html"
    report.write_text("<html><body><h1>demo</h1></body></html>")
    link_from_report(report)
    link_from_report(report)
    assert report.read_text().count(f'href="{PAGE}"') == 1
