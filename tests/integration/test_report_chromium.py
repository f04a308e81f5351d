"""The demo report (served by the session's TorchServe) in headless Chromium: screenshot, every
image loaded, no console error, and it fits a 1280-pixel-wide window."""

from __future__ import annotations

import pytest

from xai_serve.serving.demo import serve_and_report

pytestmark = pytest.mark.integration


def test_demo_report_in_chromium(served, tmp_path, render_report):
    report = serve_and_report(
        served.checkpoint,
        out_dir=tmp_path / "demo",
        name="tiny",
        n_images=2,
        server=served.config,
        log=lambda *_: None,
    )
    page = render_report(report)
    assert page.screenshot.stat().st_size > 10_000
    assert page.images and all(i["naturalWidth"] > 0 for i in page.images), page.images
    assert page.console_errors == []
    assert page.scroll_width <= 1280, f"the demo report is {page.scroll_width} px wide"
