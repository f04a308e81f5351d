"""The ``xai`` command. Each part of the project contributes its sub-commands through a
``register(app)`` function in its own ``commands`` module, so this file only assembles them.
Heavy imports (torch) happen inside the command bodies, keeping ``xai --help`` fast."""

from __future__ import annotations

import typer

from xai_serve.app import commands as app_commands
from xai_serve.decomposition import commands as decomposition_commands
from xai_serve.dissection import commands as dissection_commands
from xai_serve.evaluation import certify_commands
from xai_serve.evaluation import commands as evaluation_commands
from xai_serve.export import commands as export_commands
from xai_serve.pattern_theory import commands as gpt_commands
from xai_serve.serving import commands as serving_commands
from xai_serve.training import commands as training_commands
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
    serving_commands,
    evaluation_commands,
    dissection_commands,
    decomposition_commands,
    certify_commands,
    export_commands,
    gpt_commands,
    visualise_commands,
    app_commands,  # last: `xai dissect demo` joins the dissect group
):
    _module.register(app)


def main() -> None:
    app()


if __name__ == "__main__":
    main()
