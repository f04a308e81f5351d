"""The committed generated code equals a fresh generation from protos/ (any drift fails)."""

from __future__ import annotations

from pathlib import Path

from xai_serve.serving.protogen import API, diff, generate


def test_generated_code_is_up_to_date(tmp_path):
    generate(tmp_path / "api")
    assert diff(tmp_path / "api", API) == []


def test_generated_imports_are_package_relative():
    for path in Path(API).rglob("*.py"):
        text = path.read_text()
        assert "from torchserve import" not in text and "from xai_serve.v1 import" not in text, path


def test_diff_sees_changes(tmp_path):
    a, b = tmp_path / "a", tmp_path / "b"
    (a / "x").mkdir(parents=True)
    (b / "x").mkdir(parents=True)
    (a / "x" / "m.py").write_text("1")
    (b / "x" / "m.py").write_text("2")
    (a / "only.py").write_text("")
    assert diff(a, b) == ["only.py", "x/m.py"]
