"""Fixtures shared by every test directory: a headless Chromium (Debian's `chromium`, installed by
`make venv`, driven by Playwright without any browser download) that checks an HTML report."""

from __future__ import annotations

import shutil
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest


@dataclass
class RenderedReport:
    screenshot: Path
    images: list[dict]  # src, naturalWidth, naturalHeight of every <img>
    console_errors: list[str]
    scroll_width: int  # document width at the 1280-pixel viewport
    text: str


def _chromium() -> str:
    exe = shutil.which("chromium") or shutil.which("chromium-browser")
    assert exe, "Debian's chromium is not installed (make venv installs it): the report check cannot run"
    return exe


@pytest.fixture(scope="session")
def _browser() -> Iterator[object]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(
            executable_path=_chromium(), headless=True, args=["--no-sandbox", "--disable-gpu"]
        )
        yield browser
        browser.close()


@pytest.fixture
def render_report(_browser, tmp_path) -> Callable[[Path], RenderedReport]:
    """``render_report(html_path)``: open it at 1280x900, wait for every image, take a full-page
    screenshot; returns what loaded and every console error (also uncaught page errors)."""

    def render(path: Path) -> RenderedReport:
        page = _browser.new_page(viewport={"width": 1280, "height": 900})  # type: ignore[attr-defined]
        errors: list[str] = []
        page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
        page.on("pageerror", lambda e: errors.append(f"page error: {e}"))
        page.on("requestfailed", lambda r: errors.append(f"request failed: {r.url}"))
        try:
            page.goto(Path(path).resolve().as_uri(), wait_until="load")
            page.wait_for_function("Array.from(document.images).every(i => i.complete)", timeout=30_000)
            images = page.evaluate(
                "Array.from(document.images).map(i => ({src: i.getAttribute('src'), "
                "naturalWidth: i.naturalWidth, naturalHeight: i.naturalHeight}))"
            )
            shot = tmp_path / f"{Path(path).parent.name}-{Path(path).stem}.png"
            page.screenshot(path=str(shot), full_page=True)
            width = page.evaluate("document.documentElement.scrollWidth")
            text = page.inner_text("body")
        finally:
            page.close()
        return RenderedReport(shot, images, errors, int(width), text)

    return render
