"""The demo section: dissects the checkpoint on a synthetic set and links the report from the demo
report exactly once."""

from __future__ import annotations

from pathlib import Path

from xai_serve.app.dissection_section import demo_section, link_from_report


def test_demo_section_links_the_report(tmp_path: Path, checkpoint: Path) -> None:
    demo_report = tmp_path / "demo" / "report.html"
    demo_report.parent.mkdir()
    demo_report.write_text("<html><body><h1>demo</h1></body></html>")
    report = demo_section(checkpoint, demo_report, n_images=12)
    assert report == tmp_path / "demo" / "dissection" / "run" / "report.html" and report.is_file()
    assert (report.parent / "results.csv").read_text().count("\n") == 65  # header + 64 units
    text = demo_report.read_text()
    assert 'href="dissection/run/report.html"' in text and text.endswith("</body></html>")
    link_from_report(demo_report, report)  # a second demo run links once
    assert demo_report.read_text().count('id="dissection"') == 1
