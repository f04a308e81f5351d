"""The demo report (served by the session's TorchServe) in headless Chromium: screenshot, every
image loaded, no console error, and it fits a 1280-pixel-wide window."""

from __future__ import annotations

import pytest

pytestmark = pytest.mark.integration


def test_demo_report_in_chromium(demo_report, render_report):
    page = render_report(demo_report)
    assert page.screenshot.stat().st_size > 10_000
    assert page.images and all(i["naturalWidth"] > 0 for i in page.images), page.images
    assert page.console_errors == []
    assert page.scroll_width <= 1280, f"the demo report is {page.scroll_width} px wide"
