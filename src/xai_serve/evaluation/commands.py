"""CLI commands of this part (registered on the ``xai`` app by ``xai_serve.cli``)."""

from __future__ import annotations

import typer


def register(app: typer.Typer) -> None:
    """Add this part's commands to ``app``."""
