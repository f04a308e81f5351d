"""Linking a section's page from the demo report: one paragraph per anchor, before ``</body>``,
replaced (not repeated) when the demo runs again, text escaped."""

from __future__ import annotations

from pathlib import Path

from xai_serve.app.report_links import link_from_report


def test_one_paragraph_per_anchor_replaced_on_a_rerun(tmp_path: Path) -> None:
    report = tmp_path / "report.html"
    report.write_text("<html><body><h1>demo</h1></body></html>")
    link_from_report(
        report, tmp_path / "dissection" / "index.html", "Dissection", anchor="dissection", note="3/4 units"
    )
    link_from_report(report, "gpt/index.html", "Pattern <theory>", anchor="pattern-theory")
    link_from_report(
        report, tmp_path / "dissection" / "index.html", "Dissection", anchor="dissection", note="4/4 units"
    )
    assert report.read_text() == (
        "<html><body><h1>demo</h1>"
        '<p id="dissection"><a href="dissection/index.html">Dissection</a> 4/4 units</p>\n'
        '<p id="pattern-theory"><a href="gpt/index.html">Pattern &lt;theory&gt;</a></p>\n'
        "</body></html>"
    )


def test_a_report_without_body_end_gets_the_paragraph_appended(tmp_path: Path) -> None:
    report = tmp_path / "report.html"
    report.write_text("<h1>demo</h1>")
    link_from_report(report, "decomposed.html", "Decomposed", anchor="decomposed", note="a & b")
    assert (
        report.read_text()
        == '<h1>demo</h1><p id="decomposed"><a href="decomposed.html">Decomposed</a> a &amp; b</p>'
    )
