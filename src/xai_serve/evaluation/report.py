"""``report.html`` of a run directory: its configuration, versions, summary tables and figures."""

from __future__ import annotations

import contextlib
import csv
import html
import json
from pathlib import Path

from xai_serve.evaluation.store import RUN_FILE, atomic_write_text

MAX_TABLE_ROWS = 60
MAX_FIGURES = 24


def _table(rows: list[list[str]]) -> str:
    if not rows:
        return "<p>(empty)</p>"
    head = "".join(f"<th>{html.escape(c)}</th>" for c in rows[0])
    body = []
    for r in rows[1 : MAX_TABLE_ROWS + 1]:
        cells = []
        for c in r:
            with contextlib.suppress(ValueError):
                c = f"{float(c):.4g}" if c and not c.isdigit() else c
            cells.append(f"<td>{html.escape(c)}</td>")
        body.append("<tr>" + "".join(cells) + "</tr>")
    more = len(rows) - 1 - MAX_TABLE_ROWS
    note = f"<p>... {more} more rows in the CSV.</p>" if more > 0 else ""
    return f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table>{note}"


def write_report(root: Path, title: str) -> Path:
    """Write ``root/report.html`` showing every summary CSV and PNG under ``root``."""
    meta = json.loads((root / RUN_FILE).read_text()) if (root / RUN_FILE).exists() else {}
    parts = [
        "<!doctype html><html><head><meta charset='utf-8'>",
        f"<title>{html.escape(title)}</title>",
        "<style>body{font-family:sans-serif;margin:2em;max-width:1400px}"
        "table{border-collapse:collapse;font-size:12px;margin:0.5em 0}"
        "td,th{border:1px solid #ccc;padding:2px 6px;text-align:right}"
        "img{max-width:100%;border:1px solid #eee;margin:4px}"
        "pre{background:#f6f6f6;padding:0.5em;font-size:12px}</style></head><body>",
        f"<h1>{html.escape(title)}</h1>",
        "<h2>Run</h2><pre>" + html.escape(json.dumps(meta, indent=2, sort_keys=True)) + "</pre>",
    ]
    csvs = sorted(p for p in root.rglob("*.csv") if "parts" not in p.parts)
    for p in sorted(csvs, key=lambda p: ("summary" not in p.name, str(p))):
        with open(p, newline="") as f:
            rows = list(csv.reader(f))
        parts.append(f"<h2>{html.escape(str(p.relative_to(root)))}</h2>{_table(rows)}")
    pngs = sorted(p for p in root.rglob("*.png") if "parts" not in p.parts)
    if pngs:
        parts.append("<h2>Figures</h2>")
        for p in pngs[:MAX_FIGURES]:
            rel = html.escape(str(p.relative_to(root)))
            parts.append(f"<figure><img src='{rel}' alt='{rel}'><figcaption>{rel}</figcaption></figure>")
        if len(pngs) > MAX_FIGURES:
            parts.append(f"<p>... and {len(pngs) - MAX_FIGURES} more PNG files in the run directory.</p>")
    parts.append("</body></html>\n")
    out = root / "report.html"
    atomic_write_text(out, "\n".join(parts))
    return out
