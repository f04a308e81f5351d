"""The GPT figures page (``xai gpt``, General Pattern Theory) in headless Chromium: screenshot, every image
loaded, no console error."""

from __future__ import annotations

from pathlib import Path

from xai_serve.pattern_theory.commands import gpt_figures
from xai_serve.testing import write_gpt_checkpoint


def test_gpt_page_in_chromium(tmp_path: Path, render_report) -> None:
    write_gpt_checkpoint(tmp_path)
    index = gpt_figures(tmp_path, tmp_path / "fig", classes=(0, 9), pixels=2)
    page = render_report(index)
    assert page.screenshot.stat().st_size > 5_000
    assert len(page.images) >= 5 and all(i["naturalWidth"] > 0 for i in page.images), page.images
    assert page.console_errors == []
    text = index.read_text(encoding="utf-8")  # verdict first, the run configuration last and collapsed
    assert text.index("samples shown correctly") < text.index("<img") < text.index("<details>")
