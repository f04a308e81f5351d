"""``xai export-onnx CHECKPOINT`` and ``xai graph CHECKPOINT`` (torch imported in the bodies)."""

from __future__ import annotations

import json
from pathlib import Path

import typer

from xai_serve.errors import XaiError


def register(app: typer.Typer) -> None:
    """Add ``export-onnx`` and ``graph`` to ``app``."""

    @app.command("export-onnx")
    def export_onnx(
        checkpoint: Path = typer.Argument(..., help="checkpoint directory written by `xai train`"),
        out: Path = typer.Option(None, help="ONNX file (default CHECKPOINT/model.onnx)"),
        opset: int = typer.Option(17, help="ONNX opset version"),
        dynamic_batch: bool = typer.Option(False, "--dynamic-batch", help="symbolic batch axis"),
        which: str = typer.Option("best", help="weights: best | last"),
    ) -> None:
        """Export the checkpoint's model to ONNX (checked with the onnx checker; card in the metadata)."""
        from xai_serve.export.onnx_export import export_checkpoint

        try:
            path = export_checkpoint(checkpoint, out, which=which, opset=opset, dynamic_batch=dynamic_batch)
        except XaiError as e:
            typer.echo(f"error: {e}", err=True)
            raise typer.Exit(2) from e
        typer.echo(str(path))

    @app.command("graph")
    def graph(
        checkpoint: Path = typer.Argument(..., help="checkpoint directory written by `xai train`"),
        out: Path = typer.Option(None, help="output path without suffix (default CHECKPOINT/model_graph)"),
        which: str = typer.Option("best", help="weights: best | last"),
    ) -> None:
        """Write the model's layer graph (SVG and PNG) with the module names `layer=` takes."""
        from xai_serve.export.graph import graph_checkpoint

        try:
            svg, png = graph_checkpoint(checkpoint, out, which)
        except XaiError as e:
            typer.echo(f"error: {e}", err=True)
            raise typer.Exit(2) from e
        typer.echo(json.dumps({"svg": str(svg), "png": str(png)}))
