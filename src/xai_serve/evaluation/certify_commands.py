"""``xai certify CHECKPOINT``: measure the explanation credentials of a checkpoint (torch imported
lazily). See :mod:`xai_serve.evaluation.certify` and :mod:`xai_serve.evaluation.credentials`."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from xai_serve.evaluation.sanity_rule import SANITY_THRESHOLD


def certify_command(
    checkpoint: Annotated[Path, typer.Argument(help="checkpoint directory written by `xai train`")],
    methods: Annotated[
        str | None, typer.Option(help="comma-separated methods (default: every served heatmap method)")
    ] = None,
    param: Annotated[
        list[str] | None, typer.Option("--param", help="method parameter METHOD.KEY=VALUE (repeatable)")
    ] = None,
    samples: Annotated[int, typer.Option(help="validation samples")] = 32,
    seed: Annotated[int, typer.Option(help="seed of the sample choice and every random draw")] = 0,
    dataset: Annotated[str | None, typer.Option(help="dataset (default: the model card's)")] = None,
    data_root: Annotated[str | None, typer.Option(help="dataset root folder (local datasets)")] = None,
    split: Annotated[str, typer.Option(help="dataset split")] = "val",
    which: Annotated[str, typer.Option(help="weights: best | last")] = "best",
    threshold: Annotated[
        float, typer.Option(help="sanity rule: pass iff Spearman |maps| of the fully randomised model < this")
    ] = SANITY_THRESHOLD,
    target: Annotated[str, typer.Option(help="class explained and scored: true | predicted")] = "true",
    batch_size: Annotated[int, typer.Option(help="images per stored batch (unit of resumption)")] = 16,
    out: Annotated[
        Path | None, typer.Option(help="output directory (default certify/<checkpoint name>)")
    ] = None,
    resume: Annotated[bool, typer.Option(help="continue an interrupted run in --out")] = False,
    overwrite: Annotated[bool, typer.Option(help="replace an existing run in --out")] = False,
    device: Annotated[str, typer.Option(help="torch device (cpu, cuda)")] = "cpu",
) -> None:
    """Sanity check (cascading randomisation) + faithfulness (AOPC MoRF/LeRF, ABPC) per method:
    writes OUT/credentials.json for `xai archive --credentials`."""
    from xai_serve.errors import InvalidParameterError, XaiError
    from xai_serve.evaluation.certify import CertifyOptions, certify

    try:
        params: dict[str, dict[str, str]] = {}
        for item in param or []:
            key, sep, value = item.partition("=")
            method, dot, name = key.partition(".")
            if not sep or not dot or not method or not name:
                raise InvalidParameterError(f"--param expects METHOD.KEY=VALUE, got {item!r}")
            params.setdefault(method, {})[name] = value
        opts = CertifyOptions(
            methods=[m.strip() for m in methods.split(",") if m.strip()] if methods else None,
            method_params=params,  # type: ignore[arg-type]
            samples=samples,
            seed=seed,
            dataset=dataset,
            split=split,
            data_root=data_root,
            which=which,
            threshold=threshold,
            target=target,
            batch_size=batch_size,
            device=device,
        )
        dest = out or Path("certify") / checkpoint.name
        path = certify(
            checkpoint, dest, opts, resume=resume, overwrite=overwrite, log=lambda m: typer.echo(m, err=True)
        )
    except (XaiError, ValueError) as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from exc
    doc = json.loads(path.read_text())
    typer.echo(
        json.dumps(
            {
                "credentials": str(path),
                "passed": sorted(m for m, v in doc["methods"].items() if v["sanity"]["pass"]),
                "failed": sorted(m for m, v in doc["methods"].items() if not v["sanity"]["pass"]),
            }
        )
    )


def register(app: typer.Typer) -> None:
    """Add ``xai certify`` to ``app``."""
    app.command("certify")(certify_command)
