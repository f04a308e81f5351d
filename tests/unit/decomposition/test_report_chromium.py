"""The demo's decomposed-layer page in headless Chromium: screenshot, every image loaded, no
console error."""

from __future__ import annotations

from pathlib import Path

from xai_serve.app.decomposition_section import PAGE, decomposed_section


def test_decomposed_page_in_chromium(tmp_path: Path, render_report, released) -> None:
    ckpt = released.write_digits_resnet20_checkpoint(tmp_path / "ckpt")
    out = tmp_path / "demo"
    decomposed_section(ckpt, out, log=lambda _m: None, limit=300)
    page = render_report(out / PAGE)
    assert page.screenshot.stat().st_size > 5_000
    assert page.images and all(i["naturalWidth"] > 0 for i in page.images), page.images
    assert page.console_errors == []
