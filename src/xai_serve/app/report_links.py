"""Linking a demo section's page from the demo report (``demo/report.html``): one paragraph per
section, identified by its ``id``, before ``</body>``. A second demo run replaces the paragraph
(its figures may have changed) instead of adding another."""

from __future__ import annotations

import html
import re
from pathlib import Path


def link_from_report(report: Path, page: Path | str, title: str, *, anchor: str, note: str = "") -> None:
    """Write ``<p id="anchor"><a href="page">title</a> note</p>`` into ``report`` once. ``page`` is a
    path under the report's folder (or a relative href); ``title`` and ``note`` are plain text."""
    from xai_serve.atomic import atomic_write_text

    href = page.relative_to(report.parent).as_posix() if isinstance(page, Path) else page
    paragraph = (
        f'<p id="{html.escape(anchor)}"><a href="{html.escape(href)}">{html.escape(title)}</a>'
        + (f" {html.escape(note)}" if note else "")
        + "</p>"
    )
    text = report.read_text(encoding="utf-8")
    existing = re.compile(rf'<p id="{re.escape(html.escape(anchor))}">.*?</p>', re.DOTALL)
    if existing.search(text):
        text = existing.sub(lambda _m: paragraph, text, count=1)
    elif "</body>" in text:
        text = text.replace("</body>", f"{paragraph}\n</body>", 1)
    else:
        text += paragraph
    atomic_write_text(report, text)
