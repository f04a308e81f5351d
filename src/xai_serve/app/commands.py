"""The app layer's commands: ``xai demo`` and ``xai dissect demo`` (the demo sections live in the app
layer, so their commands do too). :func:`register` adds them once the lower layers' commands are
registered (``xai dissect demo`` joins the ``dissect`` group of :mod:`xai_serve.dissection.commands`)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from xai_serve.dissection.commands import dissect_app
from xai_serve.errors import XaiError


def demo() -> None:
    """Run the main job on the built-in digits data (see README)."""
    from xai_serve.app.demo import run_demo

    run_demo()


def dissect_demo(
    out: Annotated[str, typer.Option(help="output folder")] = "dissect/demo",
    checkpoint: Annotated[
        str | None,
        typer.Option(
            help="a pattern-theory checkpoint (default: the demo's ResGPTNet, trained on first use)"
        ),
    ] = None,
) -> None:
    """Dissect the pattern-theory model against its own generator types and transformations as concepts."""
    from xai_serve.app.dissection_section import run_dissection_demo

    try:
        report = run_dissection_demo(Path(checkpoint) if checkpoint else None, Path(out))
    except XaiError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from exc
    typer.echo(f"report: {report}")


def register(app: typer.Typer) -> None:
    app.command("demo")(demo)
    dissect_app.command("demo")(dissect_demo)
