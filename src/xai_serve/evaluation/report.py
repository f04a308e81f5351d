"""``report.html`` of a run directory, verdict first: the verdict paragraph, then the figures, then
the tables (summary tables first; every table sortable by clicking a column header; long ones
truncated with a link to the CSV), then the run configuration and versions, collapsed."""

from __future__ import annotations

import contextlib
import csv
import html
import json
from pathlib import Path

from xai_serve.atomic import atomic_write_text
from xai_serve.jobs.rundir import RUN_FILE

MAX_TABLE_ROWS = 60
MAX_FIGURES = 24

STYLE = (
    "body{font-family:sans-serif;margin:2em;max-width:1400px}"
    ".verdict{font-size:1.1em;background:#eef6ee;border-left:4px solid #2a7;padding:0.6em 1em}"
    "table{border-collapse:collapse;font-size:12px;margin:0.5em 0}"
    "td,th{border:1px solid #ccc;padding:2px 6px;text-align:right}"
    "th{cursor:pointer;background:#f3f3f3}"
    "img{max-width:100%;border:1px solid #eee;margin:4px}"
    "pre{background:#f6f6f6;padding:0.5em;font-size:12px}"
)
# Click a header to sort its table by that column (numbers numerically); click again to reverse.
SORT_SCRIPT = (
    "<script>document.querySelectorAll('table.sortable th').forEach(function(th,i){"
    "th.title='click to sort';th.addEventListener('click',function(){"
    "var tb=th.closest('table').tBodies[0];var rows=Array.from(tb.rows);"
    "var asc=th.dataset.asc!=='1';th.dataset.asc=asc?'1':'0';"
    "rows.sort(function(a,b){var x=a.cells[i].textContent,y=b.cells[i].textContent;"
    "var p=parseFloat(x),q=parseFloat(y);var c=(isNaN(p)||isNaN(q))?x.localeCompare(y):p-q;"
    "return asc?c:-c});rows.forEach(function(r){tb.appendChild(r)})})})</script>"
)


def table_html(rows: list[list[str]], csv_href: str | None = None, max_rows: int = MAX_TABLE_ROWS) -> str:
    """A sortable HTML table of CSV rows (header first); rows past ``max_rows`` are left to the CSV."""
    if not rows:
        return "<p>(empty)</p>"
    head = "".join(f"<th>{html.escape(c)}</th>" for c in rows[0])
    body = []
    for r in rows[1 : max_rows + 1]:
        cells = []
        for c in r:
            with contextlib.suppress(ValueError):
                c = f"{float(c):.4g}" if c and not c.isdigit() else c
            cells.append(f"<td>{html.escape(c)}</td>")
        body.append("<tr>" + "".join(cells) + "</tr>")
    more = len(rows) - 1 - max_rows
    link = f" <a href='{html.escape(csv_href)}'>full CSV</a>" if csv_href else ""
    note = f"<p>First {max_rows} of {len(rows) - 1} rows;{link}.</p>" if more > 0 else ""
    return (
        f"<table class='sortable'><thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table>{note}"
    )


def page(title: str, verdict: str | None, body: list[str], config: object | None) -> str:
    """A report page: title, verdict, ``body`` (figures, tables), configuration (collapsed)."""
    parts = [
        "<!doctype html><html lang='en'><head><meta charset='utf-8'>",
        "<link rel='icon' href='data:,'>",
        f"<title>{html.escape(title)}</title><style>{STYLE}</style></head><body>",
        f"<h1>{html.escape(title)}</h1>",
        f"<p class='verdict'>{verdict or 'No verdict: see the figures and tables below.'}</p>",
        *body,
    ]
    if config is not None:
        parts.append(
            "<details><summary>Run configuration and versions</summary><pre>"
            + html.escape(json.dumps(config, indent=2, sort_keys=True))
            + "</pre></details>"
        )
    parts.append(SORT_SCRIPT + "</body></html>\n")
    return "\n".join(parts)


def write_report(root: Path, title: str, verdict: str | None = None) -> Path:
    """Write ``root/report.html`` showing the verdict, every PNG and every CSV under ``root``."""
    meta = json.loads((root / RUN_FILE).read_text()) if (root / RUN_FILE).exists() else {}
    body: list[str] = []
    pngs = sorted(p for p in root.rglob("*.png") if "parts" not in p.parts)
    if pngs:
        body.append("<h2>Figures</h2>")
        for p in pngs[:MAX_FIGURES]:
            rel = html.escape(str(p.relative_to(root)))
            body.append(f"<figure><img src='{rel}' alt='{rel}'><figcaption>{rel}</figcaption></figure>")
        if len(pngs) > MAX_FIGURES:
            body.append(f"<p>... and {len(pngs) - MAX_FIGURES} more PNG files in the run directory.</p>")
    csvs = sorted(p for p in root.rglob("*.csv") if "parts" not in p.parts)
    if csvs:
        body.append("<h2>Tables</h2>")
    for p in sorted(csvs, key=lambda p: ("summary" not in p.name, str(p))):
        with open(p, newline="") as f:
            rows = list(csv.reader(f))
        rel = str(p.relative_to(root))
        body.append(f"<h3><a href='{html.escape(rel)}'>{html.escape(rel)}</a></h3>{table_html(rows, rel)}")
    out = root / "report.html"
    atomic_write_text(out, page(title, verdict, body, meta or None))
    return out
