"""``xai explain --param METHOD.KEY=VALUE``: the client's grammar, checked against the registry's specs
before any request (a refused item never reaches a server: none runs here)."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from xai_serve.cli import app


@pytest.mark.parametrize(
    ("items", "message"),
    [
        (["lrp.nope=1"], "method 'lrp' has no parameter 'nope'"),
        (["lrp.epsilon=abc"], "epsilon"),
        (["gradcam.layer=layer4"], "--param for gradcam, which no --method names"),
        (["lrp"], "--param expects METHOD.KEY=VALUE"),
    ],
)
def test_bad_params_are_refused_before_any_request(tmp_path: Path, items: list[str], message: str) -> None:
    args = ["explain", str(tmp_path / "x.png"), "--model", "m", "--method", "lrp", "--out", str(tmp_path)]
    for item in items:
        args += ["--param", item]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 2
    assert message in result.output


def test_client_methods_with_params() -> None:
    from xai_client.cli import methods_with_params
    from xai_client.errors import InvalidArgument

    got = methods_with_params(["lrp", "gradient"], ["lrp.epsilon=0.1", "lrp.composite=epsilon"])
    assert got == {"lrp": {"epsilon": "0.1", "composite": "epsilon"}, "gradient": {}}
    with pytest.raises(InvalidArgument, match="which no --method names"):
        methods_with_params(["lrp"], ["gradcam.layer=layer4"])
