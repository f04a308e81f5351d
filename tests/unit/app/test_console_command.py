"""``make demo`` ends with the one line that opens the explanation console on the demo's archives; both of
its ``xai`` commands parse with the real CLI."""

from __future__ import annotations

import shlex

import typer

from xai_serve.app.demo import console_command
from xai_serve.cli import app


def test_the_console_line_parses_with_the_xai_cli() -> None:
    line = console_command(["digits", "digits_resnet20", "gpt"])
    parts = [shlex.split(p) for p in line.split("&&")]
    assert [p[:2] for p in parts] == [["xai", "serve"], ["xai", "console"]]
    group = typer.main.get_command(app)
    for argv in parts:
        command = group.commands[argv[1]]  # type: ignore[attr-defined]
        ctx = command.make_context(argv[1], argv[2:])
        if argv[1] == "serve":
            assert list(ctx.params["models"]) == ["digits", "digits_resnet20", "gpt"]
        else:
            assert ctx.params["port"] == 8090
