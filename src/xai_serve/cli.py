"""The ``xai`` command. Each part of the project contributes its sub-commands through a
``register(app)`` function in its own ``commands`` module, so this file only assembles them.
Heavy imports (torch) happen inside the command bodies, keeping ``xai --help`` fast.

Help on a terminal is typer's (rich panels); piped or redirected (``xai --help | less``, a CI log) it is
click's plain text: no ANSI codes, no box drawing, every option name and command summary whole."""

from __future__ import annotations

import sys

import typer
from typer.core import TyperCommand, TyperGroup

from xai_serve.app import commands as app_commands
from xai_serve.console import commands as console_commands
from xai_serve.decomposition import commands as decomposition_commands
from xai_serve.dissection import commands as dissection_commands
from xai_serve.evaluation import certify_commands
from xai_serve.evaluation import commands as evaluation_commands
from xai_serve.export import commands as export_commands
from xai_serve.pattern_theory import commands as gpt_commands
from xai_serve.serving import commands as serving_commands
from xai_serve.training import commands as training_commands
from xai_serve.training import import_commands
from xai_serve.visualise import commands as visualise_commands

app = typer.Typer(
    name="xai",
    help="Train CNN classifiers, archive them for TorchServe and serve predictions with explanations.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)

for _module in (
    training_commands,
    import_commands,
    serving_commands,
    evaluation_commands,
    dissection_commands,
    decomposition_commands,
    certify_commands,
    export_commands,
    gpt_commands,
    visualise_commands,
    console_commands,
    app_commands,  # last: `xai dissect demo` joins the dissect group
):
    _module.register(app)


def plain_help(command: TyperCommand | TyperGroup) -> None:
    """Switch ``command`` and every sub-command to click's plain help, with each command's whole first
    paragraph as its summary in a group's listing (click would cut it to the width with "...")."""
    command.rich_markup_mode = None
    if not command.short_help and command.help:
        command.short_help = " ".join(command.help.strip().split("\n\n")[0].split())
    for sub in getattr(command, "commands", {}).values():
        plain_help(sub)


def main() -> None:
    command = typer.main.get_command(app)
    if not sys.stdout.isatty() and isinstance(command, TyperCommand | TyperGroup):
        plain_help(command)
    command()


if __name__ == "__main__":
    main()
