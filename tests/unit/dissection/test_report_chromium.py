"""The dissection report pages (the overview and a unit-range page) in headless Chromium:
screenshot, every image loaded, no console error."""

from __future__ import annotations

from pathlib import Path

from xai_serve.dissection.runner import DissectConfig, dissect


def test_dissection_report_in_chromium(tmp_path: Path, checkpoint, broden, render_report) -> None:
    out = tmp_path / "run"
    config = DissectConfig(
        checkpoint=str(checkpoint), broden=str(broden[0]), layer="features.36", units_per_part=8
    )
    dissect(out, config, log=lambda _m: None)
    pages = [out / "report.html", *sorted((out / "report").glob("*.html"))[:1]]
    assert len(pages) == 2
    for html in pages:
        page = render_report(html)
        assert page.screenshot.stat().st_size > 5_000, html
        assert all(i["naturalWidth"] > 0 for i in page.images), (html, page.images)
        assert page.console_errors == [], (html, page.console_errors)
    assert render_report(pages[1]).images, "a unit page shows its top images"
    text = pages[0].read_text(encoding="utf-8")  # verdict first, the run configuration last and collapsed
    assert text.index("units interpretable") < text.index("<table") < text.index("<details>")
