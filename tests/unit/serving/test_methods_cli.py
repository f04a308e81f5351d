"""Both CLIs take method names and per-method help from the registry: ``xai methods`` lists it, ``xai
explain`` refuses an unregistered ``--method`` with the registry's choices before contacting a server."""

from __future__ import annotations

from pathlib import Path

from typer.testing import CliRunner

from xai_serve.cli import app
from xai_serve.explain import list_methods


def test_xai_methods_lists_the_registry_with_param_specs() -> None:
    result = CliRunner().invoke(app, ["methods"])
    assert result.exit_code == 0, result.output
    for name, spec in list_methods().items():
        assert f"{name}: " in result.output
        for pname in spec.params:
            assert f"    {pname} (" in result.output
    one = CliRunner().invoke(app, ["methods", "lrp"])
    assert one.output.startswith("lrp: ") and "stabilizer (float, default 1e-06, > 0" in one.output
    bad = CliRunner().invoke(app, ["methods", "nope"])
    assert bad.exit_code == 2 and "registered: " in bad.output


def test_xai_explain_refuses_an_unknown_method_with_the_choices(tmp_path: Path) -> None:
    image = tmp_path / "a.png"
    image.write_bytes(b"")
    result = CliRunner().invoke(
        app, ["explain", str(image), "--model", "m", "--method", "gradcam", "--method", "nope", "--out", "o"]
    )
    assert result.exit_code == 2
    assert "unknown method 'nope'" in result.output
    assert all(f"{name}: " in result.output for name in list_methods())
