"""CLI command ``xai import WEIGHTS --out DIR (--arch NAME | --model-file FILE.py --model-class NAME)``.

Heavy imports (torch) happen inside the command body, keeping ``xai --help`` fast.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import NoReturn

import typer


def _fail(message: str) -> NoReturn:
    typer.echo(f"error: {message}", err=True)
    raise typer.Exit(2)


def register(app: typer.Typer) -> None:
    """Add ``xai import`` to ``app``."""

    @app.command("import")
    def import_(
        weights: Path | None = typer.Argument(
            None, help="weights file (.pt/.pth/.th/.tar/.safetensors: a state_dict, possibly nested)"
        ),
        out: Path | None = typer.Option(None, "--out", help="new checkpoint directory (must not exist)"),
        arch: str | None = typer.Option(
            None,
            "--arch",
            help="registry model or torchvision classification architecture (see --list-archs)",
        ),
        model_file: Path | None = typer.Option(None, "--model-file", help="your model's Python file"),
        model_class: str | None = typer.Option(
            None, "--model-class", help="the nn.Module class in --model-file"
        ),
        kwargs: str = typer.Option("{}", "--kwargs", help="JSON object of constructor arguments"),
        num_classes: int | None = typer.Option(
            None, "--num-classes", help="classes (default: from the file)"
        ),
        input_size: str | None = typer.Option(
            None, "--input-size", help="C,H,W (default: the architecture's)"
        ),
        normalize: str | None = typer.Option(
            None,
            "--normalize",
            help="imagenet | cifar10 | mnist | none | MEAN/STD (e.g. 0.5,0.5,0.5/0.2,0.2,0.2)",
        ),
        labels: Path | None = typer.Option(
            None,
            "--labels",
            help="class names: lines, JSON list, {index: name} or Places365 'name index' lines",
        ),
        dataset: str | None = typer.Option(
            None, "--dataset", help="dataset the card names (evaluate/certify use it)"
        ),
        trust_pickle: bool = typer.Option(
            False,
            "--trust-pickle",
            help="allow a file of pickled objects (runs its code once; re-saved as tensors)",
        ),
        list_archs: bool = typer.Option(False, "--list-archs", help="print every --arch name and exit"),
    ) -> None:
        """Turn a PyTorch weights file into a checkpoint directory (model.json + best.pt) that xai archive,
        serve, evaluate, certify and dissect take."""
        from xai_serve.errors import XaiError
        from xai_serve.training.importer import (
            ImportSpec,
            import_weights,
            known_architectures,
            parse_input_size,
        )

        if list_archs:
            typer.echo("\n".join(known_architectures()))
            return
        if weights is None or out is None:
            _fail("give WEIGHTS and --out DIR")
        try:
            extra = json.loads(kwargs)
        except json.JSONDecodeError as exc:
            _fail(f"--kwargs is not valid JSON: {exc}")
        if not isinstance(extra, dict):
            _fail("--kwargs must be a JSON object")
        try:
            spec = ImportSpec(
                weights=weights,
                out=out,
                arch=arch,
                model_file=model_file,
                model_class=model_class,
                kwargs=extra,
                num_classes=num_classes,
                input_size=parse_input_size(input_size) if input_size else None,
                normalize=normalize,
                labels=labels,
                dataset=dataset,
                trust_pickle=trust_pickle,
            )
            result = import_weights(spec)
        except XaiError as exc:
            _fail(str(exc))
        card = result.card
        typer.echo(f"checkpoint: {result.out}")
        typer.echo(
            f"model {card.model} ({card.num_classes} classes, input {'x'.join(map(str, card.input_shape))}, "
            f"dataset {card.dataset}); {result.tensors} tensors"
            + (f", layout {result.layout}" if result.layout else "")
        )
        typer.echo(f"next: xai archive {result.out} --name NAME && xai serve")
