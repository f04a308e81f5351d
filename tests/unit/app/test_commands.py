"""The app layer's commands: `xai demo` and `xai dissect demo` (same options as before they moved out of
cli.py and dissection/commands.py) call the app's demo functions."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from xai_serve.cli import app
from xai_serve.errors import CheckpointError


def test_dissect_demo_passes_its_options(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    calls: list[tuple[Path | None, Path]] = []

    def fake(checkpoint: Path | None, out: Path) -> Path:
        calls.append((checkpoint, out))
        return out / "run" / "report.html"

    monkeypatch.setattr("xai_serve.app.dissection_section.run_dissection_demo", fake)
    r = CliRunner().invoke(app, ["dissect", "demo", "--out", str(tmp_path / "d"), "--checkpoint", "ck"])
    assert r.exit_code == 0, r.output
    assert calls == [(Path("ck"), tmp_path / "d")]
    assert r.stdout.strip() == f"report: {tmp_path / 'd' / 'run' / 'report.html'}"
    r = CliRunner().invoke(app, ["dissect", "demo"])
    assert r.exit_code == 0 and calls[-1] == (None, Path("dissect/demo"))


def test_dissect_demo_reports_errors(monkeypatch: pytest.MonkeyPatch) -> None:
    def broken(checkpoint: Path | None, out: Path) -> Path:
        raise CheckpointError("no best.pt")

    monkeypatch.setattr("xai_serve.app.dissection_section.run_dissection_demo", broken)
    r = CliRunner().invoke(app, ["dissect", "demo", "--checkpoint", "nowhere"])
    assert r.exit_code == 2 and "error: no best.pt" in r.output


def test_demo_runs_the_app_demo(monkeypatch: pytest.MonkeyPatch) -> None:
    ran: list[bool] = []
    monkeypatch.setattr("xai_serve.app.demo.run_demo", lambda: ran.append(True))
    r = CliRunner().invoke(app, ["demo"])
    assert r.exit_code == 0 and ran == [True]
