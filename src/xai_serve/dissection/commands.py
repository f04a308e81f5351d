"""``xai dissect``: neuron dissection with compositional explanations (Mu & Andreas 2020). torch is imported
only inside the command bodies.

    xai dissect run --checkpoint CKPT --broden DIR --layer NAME --out OUT [--shard K/N] [--workers P]
    xai dissect merge OUT
    xai dissect synth OUT [--images N]          # a small synthetic Broden-format folder
    xai dissect demo [--out dissect/demo]       # the pattern-theory model vs its own concepts (app)
"""

from __future__ import annotations

import json
from typing import Annotated

import typer

from xai_serve.errors import InvalidParameterError, XaiError

dissect_app = typer.Typer(
    help="Neuron dissection: label each unit of a layer with the concept formula (OR / AND / AND NOT "
    "over a Broden-format probing set) that best matches where it fires, by IoU.",
    no_args_is_help=True,
)


def _fail(exc: Exception) -> typer.Exit:
    typer.echo(f"error: {exc}", err=True)
    return typer.Exit(2)


@dissect_app.command("run")
def run_command(
    checkpoint: Annotated[str, typer.Option(help="checkpoint directory written by `xai train`")],
    broden: Annotated[
        str, typer.Option(help="Broden-format folder (index.csv, label.csv, category.csv, images/)")
    ],
    layer: Annotated[
        str, typer.Option(help="module name of the layer to dissect, e.g. features.27 or layer4")
    ],
    out: Annotated[str, typer.Option(help="run directory (continued when it holds the same run)")],
    index: Annotated[
        str, typer.Option(help="index file inside --broden (compexp: index_ade20k.csv)")
    ] = "index.csv",
    which: Annotated[str, typer.Option(help="weights: best | last")] = "best",
    quantile: Annotated[
        float, typer.Option(help="top fraction of activations defining a unit's mask")
    ] = 0.005,
    max_length: Annotated[int, typer.Option(help="most concepts in a formula")] = 3,
    beam: Annotated[int, typer.Option(help="beam size")] = 5,
    penalty: Annotated[
        float, typer.Option(help="complexity penalty: score = IoU * penalty**(length-1)")
    ] = 1.0,
    units_per_part: Annotated[int, typer.Option(help="units per resumable part")] = 16,
    top_images: Annotated[int, typer.Option(help="top images per unit in the report")] = 4,
    limit: Annotated[int | None, typer.Option(help="use only the first N images of the index")] = None,
    batch_size: Annotated[int, typer.Option(help="images per forward pass")] = 64,
    shard: Annotated[
        str | None, typer.Option(help="K/N (0 <= K < N): run only the parts i with i % N == K")
    ] = None,
    workers: Annotated[int, typer.Option(help="processes for the parts on this machine")] = 1,
    overwrite: Annotated[bool, typer.Option(help="replace a different run in --out")] = False,
    backend: Annotated[str, typer.Option(help="local | ray (parts as Ray tasks, then the merge)")] = "local",
    address: Annotated[str | None, typer.Option(help="Ray cluster address (default: a local Ray)")] = None,
) -> None:
    """Dissect one layer; resumable, shardable (then `xai dissect merge OUT`)."""
    from xai_serve.dissection.runner import DissectConfig, dissect
    from xai_serve.jobs.shard import Shard

    try:
        config = DissectConfig(
            checkpoint=checkpoint,
            broden=broden,
            layer=layer,
            index=index,
            which=which,
            quantile=quantile,
            max_length=max_length,
            beam=beam,
            penalty=penalty,
            units_per_part=units_per_part,
            top_images=top_images,
            limit=limit,
            batch_size=batch_size,
        )
        if backend not in ("local", "ray") or (backend == "ray" and shard):
            raise InvalidParameterError("--backend is local or ray (ray runs every shard itself: no --shard)")
        if backend == "ray":
            from xai_serve.dissection.ray_backend import dissect_on_ray

            merged = dissect_on_ray(out, config, address=address, overwrite=overwrite)
            typer.echo(json.dumps({"out": out, "merged": True, **merged}))
            return
        summary = dissect(
            out,
            config,
            shard=Shard.parse(shard) if shard is not None else None,
            workers=workers,
            overwrite=overwrite,
            log=lambda m: typer.echo(f"[dissect] {m}", err=True),
        )
    except XaiError as exc:
        raise _fail(exc) from exc
    typer.echo(json.dumps({"out": out, "merged": summary is not None, **(summary or {})}))


@dissect_app.command("merge")
def merge_command(out: Annotated[str, typer.Argument(help="run directory whose parts to join")]) -> None:
    """Join the parts of a (sharded) run into results.csv, history.log and report.html."""
    from xai_serve.dissection.runner import merge

    try:
        summary = merge(out)
    except XaiError as exc:
        raise _fail(exc) from exc
    typer.echo(json.dumps({"out": out, **summary}))


@dissect_app.command("synth")
def synth_command(
    out: Annotated[str, typer.Argument(help="folder to write")],
    images: Annotated[int, typer.Option(help="number of images")] = 40,
    image_size: Annotated[int, typer.Option(help="image side in pixels")] = 112,
    mask_size: Annotated[int, typer.Option(help="segmentation side in pixels")] = 56,
    seed: Annotated[int, typer.Option(help="random seed")] = 0,
) -> None:
    """Write a small synthetic Broden-format folder (shapes, colours, parts, textures, scenes)."""
    from xai_serve.data.synthetic_broden import write_synthetic_broden

    write_synthetic_broden(out, images, image_size=image_size, mask_size=mask_size, seed=seed)
    typer.echo(json.dumps({"out": out, "images": images}))


def register(app: typer.Typer) -> None:
    app.add_typer(dissect_app, name="dissect")
