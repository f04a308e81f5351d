"""CLI commands of training: ``xai train RECIPE`` and ``xai finetune SRC --recipe R --out DST``.

Heavy imports (torch) happen inside the command bodies, keeping ``xai --help`` fast.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any, NoReturn

import typer


def _fail(message: str) -> NoReturn:
    typer.echo(f"error: {message}", err=True)
    raise typer.Exit(2)


def _summary(result: Any) -> str:
    m = result.metrics
    lines = [f"checkpoint: {result.out_dir}"]
    if not result.completed:
        return "\n".join([*lines, f"stopped after epoch {result.epochs_done}; continue with --resume"])
    lines.append(
        f"test accuracy: {m['accuracy']:.4f} ({m['n'] - m['misclassified']}/{m['n']}), "
        f"macro F1 {m['macro_f1']:.4f}, best epoch {m['best_epoch']}/{m['epochs']}, "
        f"train time {m['train_seconds']:.1f} s"
    )
    lines.append(f"misclassified: {m['misclassified']} PNGs in {result.out_dir / 'misclassified'}")
    return "\n".join(lines)


def _with_overrides(recipe: Any, data_root: Path | None, device: str | None) -> Any:
    if data_root is not None:
        recipe = dataclasses.replace(recipe, data=dataclasses.replace(recipe.data, root=str(data_root)))
    if device is not None:
        if device not in ("auto", "cpu", "cuda"):
            _fail("--device must be auto, cpu or cuda")
        recipe = dataclasses.replace(recipe, device=device)
    return recipe


def register(app: typer.Typer) -> None:
    """Add this part's commands to ``app``."""

    @app.command()
    def train(
        recipe: Path = typer.Argument(..., help="recipe file, e.g. training/digits_simplenet.toml"),
        out: Path | None = typer.Option(None, "--out", help="checkpoint directory (default runs/<name>)"),
        resume: bool = typer.Option(False, "--resume", help="continue an interrupted run in --out"),
        force: bool = typer.Option(False, "--force", help="overwrite an existing checkpoint directory"),
        data_root: Path | None = typer.Option(None, "--data-root", help="folder with local datasets"),
        device: str | None = typer.Option(None, "--device", help="auto | cpu | cuda (overrides recipe)"),
        quiet: bool = typer.Option(False, "--quiet", help="no progress bars"),
    ) -> None:
        """Train a model from a recipe and write its checkpoint directory."""
        from xai_serve.errors import XaiError
        from xai_serve.training import load_recipe
        from xai_serve.training import train as run_train

        try:
            spec = _with_overrides(load_recipe(recipe), data_root, device)
            result = run_train(spec, out, resume=resume, force=force, progress=not quiet)
        except XaiError as exc:
            _fail(str(exc))
        typer.echo(_summary(result))

    @app.command()
    def finetune(
        src: Path = typer.Argument(..., help="source checkpoint directory (never modified)"),
        recipe: Path = typer.Option(..., "--recipe", help="recipe for the fine-tuning run"),
        out: Path = typer.Option(..., "--out", help="new checkpoint directory"),
        force: bool = typer.Option(False, "--force", help="overwrite an existing --out"),
        which: str = typer.Option("best", "--which", help="start from best | last weights of SRC"),
        data_root: Path | None = typer.Option(None, "--data-root", help="folder with local datasets"),
        device: str | None = typer.Option(None, "--device", help="auto | cpu | cuda (overrides recipe)"),
        quiet: bool = typer.Option(False, "--quiet", help="no progress bars"),
    ) -> None:
        """Fine-tune SRC's weights with a recipe into a new checkpoint directory."""
        from xai_serve.errors import XaiError
        from xai_serve.training import finetune as run_finetune
        from xai_serve.training import load_recipe

        if which not in ("best", "last"):
            _fail("--which must be best or last")
        try:
            spec = _with_overrides(load_recipe(recipe), data_root, device)
            result = run_finetune(src, spec, out, force=force, which=which, progress=not quiet)
        except XaiError as exc:
            _fail(str(exc))
        typer.echo(_summary(result))
