"""Every HTML report in headless Chromium (Debian's `chromium` through Playwright): a full-page
screenshot, every image loaded (naturalWidth > 0), no console error, verdict first.

The evaluation reports are produced here for every suite in the registry (a new suite is covered
without an edit); the other report generators are checked next to their own fixtures, and
`test_every_report_generator_is_checked_in_chromium` finds every module that writes an HTML page
and fails until it has a Chromium test."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from typer.testing import CliRunner

from xai_serve.cli import app
from xai_serve.evaluation.registry import list_suites

ROOT = Path(__file__).resolve().parents[3]

# module writing HTML -> the test file that renders its pages in Chromium
CHROMIUM_TESTS = {
    "src/xai_serve/evaluation/report.py": "tests/unit/reports/test_reports_chromium.py",
    "src/xai_serve/app/serving_section.py": "tests/integration/test_report_chromium.py",
    "src/xai_serve/dissection/report.py": "tests/unit/dissection/test_report_chromium.py",
    "src/xai_serve/app/decomposition_section.py": "tests/unit/decomposition/test_report_chromium.py",
    "src/xai_serve/app/dissection_section.py": "tests/unit/dissection/test_demo.py",
    "src/xai_serve/pattern_theory/figures.py": "tests/unit/pattern_theory/test_report_chromium.py",
}
# a few fast options per suite (others run with --samples 4 and their defaults)
FAST = {
    "faithfulness": ["--step", "49", "--patch-size", "7", "--methods", "gradient,input_x_gradient"],
    "feature-removal": ["--methods", "gradient", "--max-figures", "2"],
    "randomisation": ["--methods", "gradient,guided_backprop"],
}


def _html_generators() -> set[str]:
    pattern = re.compile(r"<!doctype html|<html[ >]", re.IGNORECASE)
    return {
        str(p.relative_to(ROOT))
        for p in (ROOT / "src").rglob("*.py")
        if pattern.search(p.read_text(encoding="utf-8", errors="replace"))
    }


def test_every_report_generator_is_checked_in_chromium():
    generators = _html_generators()
    missing = generators - set(CHROMIUM_TESTS)
    assert not missing, (
        f"HTML report generators without a Chromium test (add them to CHROMIUM_TESTS): {missing}"
    )
    for module, test in CHROMIUM_TESTS.items():
        if module in generators:
            assert "render_report" in (ROOT / test).read_text(), f"{test} does not render {module}"


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory) -> Path:
    """A digits MLP checkpoint (random weights: the reports only need real outputs to show)."""
    from xai_serve.testing import write_checkpoint

    return write_checkpoint(
        tmp_path_factory.mktemp("ckpt") / "mlp",
        model="mlp",
        model_kwargs={"input_shape": [1, 28, 28], "hidden": [32, 16]},
        mean=(0.3,),
        std=(0.4,),
        labels=[str(i) for i in range(10)],
        files=("best.pt", "weights.pt"),
    )


@pytest.mark.parametrize("suite", list(list_suites()))
def test_evaluation_report_in_chromium(suite, checkpoint, tmp_path, render_report):
    out = tmp_path / suite
    res = CliRunner().invoke(
        app,
        [
            "evaluate",
            suite,
            "--checkpoint",
            str(checkpoint),
            "--out",
            str(out),
            "--samples",
            "4",
            *FAST.get(suite, []),
        ],
    )
    assert res.exit_code == 0, res.output
    page = render_report(out / "report.html")
    assert page.screenshot.stat().st_size > 10_000
    assert page.images and all(i["naturalWidth"] > 0 for i in page.images), page.images
    assert page.console_errors == []
    assert any(i["src"] == "model_graph.png" for i in page.images)  # the layer graph (xai graph)
    text = page.text
    # verdict first, then figures, then tables, the run configuration last (collapsed)
    assert "No verdict" not in text
    positions = [text.index(s) for s in ("Figures", "Tables", "Run configuration") if s in text]
    assert positions == sorted(positions) and "Run configuration" in text and "Figures" in text
    html = (out / "report.html").read_text()
    assert html.index("class='verdict'") < html.index("<h2>Figures") and "<details>" in html
