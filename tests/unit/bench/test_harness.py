"""The benchmark harness (bench/__main__.py) and its BENCHMARKS.md writer (bench/report.py), without
running any real benchmark: fake suites that return rows, raise, or do not exist."""

from __future__ import annotations

import json
import math
import sys
import types
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[3]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import bench.__main__ as harness  # noqa: E402
from bench import report  # noqa: E402
from bench.common import Measurement  # noqa: E402


@pytest.mark.parametrize(
    ("target", "median", "ratio", "met"),
    [
        ("<= 10 ms", 9.9, None, True),
        ("<= 10 ms", 10.1, None, False),
        (">= 70 %", 71.0, None, True),
        ("< 5", 5.0, None, False),
        ("== 0", 0.0, None, True),
        ("<= 1.3x", 100.0, 1.2, True),
        ("<= 1.3x", 1.0, 1.31, False),
        ("<= 1.3x", 1.0, None, None),  # no baseline: undecided
        ("fast enough", 1.0, None, None),  # not machine-readable
        (None, 1.0, None, None),
    ],
)
def test_evaluate_target(target: str | None, median: float, ratio: float | None, met: bool | None) -> None:
    m = Measurement("s", "c", "n", "ms", median, target=target, ratio=ratio)
    assert report.evaluate_target(m) is met


def _install(monkeypatch: pytest.MonkeyPatch, name: str, run: object) -> None:
    module = types.ModuleType(f"bench.{name}")
    module.__doc__ = f"Suite {name}: what it measures.\n\nDetails."
    module.run = run  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, f"bench.{name}", module)


def test_main_runs_suites_isolates_failures_and_writes_outputs(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    def good(quick: bool) -> list[Measurement]:
        assert quick is True
        return [
            Measurement("engine", "resnet B=1", "captum", "ms", 20.0, 18.0, 22.0, n=10),
            Measurement(
                "engine",
                "resnet B=1",
                "ours",
                "ms",
                25.0,
                24.0,
                26.0,
                n=10,
                baseline="captum",
                target="<= 1.3x",
            ),
            Measurement("engine", "resnet B=1", "broken", "ms", math.nan, extra={"error": "boom | bad"}),
        ]

    def bad(quick: bool) -> list[Measurement]:
        raise RuntimeError("suite exploded")

    _install(monkeypatch, "engine", good)
    _install(monkeypatch, "serving", bad)
    md = tmp_path / "BENCHMARKS.md"
    monkeypatch.setattr(harness, "BENCHMARKS_MD", md)
    monkeypatch.setattr(harness, "SUITES", ["engine", "serving", "no_such_suite"])
    out = tmp_path / "results"
    rc = harness.main(["--quick", "--out", str(out)])
    assert rc == 1  # a suite raised
    (result_file,) = out.glob("*.json")
    run = json.loads(result_file.read_text())
    assert run["mode"] == "quick" and run["command"] == "python -m bench --quick --out " + str(out)
    assert {"cpu", "cores", "ram_gib"} <= set(run["machine"])
    wanted = {"python", "torch", "captum", "zennit", "grad-cam", "quantus", "torchserve", "java"}
    assert wanted <= set(run["versions"])
    suites = run["suites"]
    assert suites["engine"]["status"] == "ok"
    ours = next(m for m in suites["engine"]["measurements"] if m["name"] == "ours")
    assert ours["ratio"] == pytest.approx(1.25) and ours["met"] is True
    assert suites["serving"]["status"] == "error" and "suite exploded" in suites["serving"]["error"]
    assert suites["no_such_suite"]["status"] == "missing"

    text = md.read_text()
    assert "| engine | ok |" in text
    assert "suite exploded" in text and "missing" in text
    assert "| resnet B=1 | ours | 25.00 ms | 24.00–26.00 | 10 | 1.25× | captum | <= 1.3x | met |" in text
    assert "error: boom \\| bad" in text
    assert "Suite engine: what it measures." in text


def test_only_carries_over_earlier_suites(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    out = tmp_path / "results"
    out.mkdir()
    earlier = {
        "timestamp": "20260101T000000Z",
        "suites": {
            "serving": {
                "status": "ok",
                "error": None,
                "seconds": 3.0,
                "doc": "",
                "measurements": [Measurement("serving", "c", "x", "ms", 1.0).as_dict()],
            }
        },
    }
    (out / "20260101T000000Z.json").write_text(json.dumps(earlier))
    _install(monkeypatch, "engine", lambda quick: [Measurement("engine", "c", "y", "ms", 2.0)])
    md = tmp_path / "BENCHMARKS.md"
    monkeypatch.setattr(harness, "BENCHMARKS_MD", md)
    monkeypatch.setattr(harness, "RESULTS", out)
    monkeypatch.setattr(harness, "SUITES", ["engine", "serving"])
    assert harness.main(["--full", "--only", "engine", "--out", str(out)]) == 0
    text = md.read_text()
    assert "from run 20260101T000000Z" in text
    assert "| c | x | 1.00 ms |" in text and "| c | y | 2.00 ms |" in text
