"""``--management-address`` of the client CLI and ``xai predict|explain``: the session server listens on free
ports, so its management port is not the inference port + 1 and only the explicit address reaches it."""

from __future__ import annotations

import pytest
from xai_client.cli import main as client_main

pytestmark = pytest.mark.integration


def test_client_cli_methods_with_explicit_management_address(served, capsys) -> None:
    cfg = served.config
    args = ["methods", "--model", "tiny", "--address", cfg.grpc_address, "--key-file", str(cfg.key_file)]
    assert client_main([*args, "--management-address", cfg.grpc_management_address]) == 0
    out = capsys.readouterr().out
    assert "gradient:" in out and "lrp:" in out
    http = ["methods", "--model", "tiny", "--protocol", "http", "--address", cfg.inference_url]
    http += ["--key-file", str(cfg.key_file), "--management-address", cfg.management_url]
    assert client_main(http) == 0
    assert "gradient:" in capsys.readouterr().out


def test_xai_commands_pass_the_management_address_on(served, tmp_path) -> None:
    import numpy as np
    from PIL import Image
    from typer.testing import CliRunner

    from xai_serve.cli import app

    cfg = served.config

    image = tmp_path / "x.png"
    Image.fromarray((np.random.default_rng(0).random((28, 28)) * 255).astype(np.uint8)).save(image)
    common = ["--model", "tiny", "--address", cfg.grpc_address, "--key-file", str(cfg.key_file)]
    result = CliRunner().invoke(
        app, ["predict", str(image), *common, "--management-address", cfg.grpc_management_address]
    )
    assert result.exit_code == 0, result.output
    assert "x.png:" in result.output
