"""``xai decompose find|validate|essential|mi|finetune|convert-csg``
(Decomposing the Deep, docs/methods.md#decomposing-the-deep).

CHECKPOINT is a checkpoint directory (``xai train``, ``convert-csg``) or a bare weights file such as the
released ``resnet20-12fca82f.th`` (then ``--model`` names the architecture, default resnet20).
Heavy imports happen inside the command bodies.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, NoReturn

import typer

decompose_app = typer.Typer(
    name="decompose",
    help="Class-specific influential filters and the decomposed final layer (Decomposing the Deep).",
    no_args_is_help=True,
)

_DATA_ROOT = typer.Option(None, "--data-root", help="folder with local datasets (e.g. cifar-10-batches-py/)")
_MODEL = typer.Option("resnet20", "--model", help="architecture of a bare weights file")
_DATASET = typer.Option(None, "--dataset", help="dataset (default: the card's, else cifar10)")
_DEVICE = typer.Option(
    "cpu", "--device", help="torch device: cpu | cuda | cuda:N | auto (cuda when available)"
)


def _device(name: str) -> str:
    import torch

    if name == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if name.startswith("cuda") and not torch.cuda.is_available():
        _fail(f"--device {name}: CUDA is not available here")
    if name != "cpu" and not name.startswith("cuda"):
        _fail(f"--device must be cpu, cuda, cuda:N or auto; got {name!r}")
    return name


def _fail(message: str) -> NoReturn:
    typer.echo(f"error: {message}", err=True)
    raise typer.Exit(2)


def _write_json(path: Path, data: Any) -> None:
    from xai_serve.atomic import atomic_write_text

    atomic_write_text(path, json.dumps(data, indent=2) + "\n")


def _open_model(checkpoint: Path, model: str) -> tuple[Any, Any]:
    from xai_serve.decomposition.source import open_model

    return open_model(checkpoint, model=model)


def _open_split(card: Any, dataset: str | None, split: str, data_root: Path | None) -> Any:
    from xai_serve.decomposition.source import open_split

    name = dataset or (card.dataset if card is not None else "cifar10")
    if card is not None:  # the card's channels, normalisation and preprocessing
        from xai_serve.data.for_model import load_for_card

        return load_for_card(name, split, card, root=data_root)
    return open_split(name, split, root=data_root)


def _open(
    checkpoint: Path, model: str, dataset: str | None, split: str, data_root: Path | None
) -> tuple[Any, Any]:
    net, card = _open_model(checkpoint, model)
    return net, _open_split(card, dataset, split, data_root)


def _indices_for(net: Any, path: Path) -> Any:
    """The index file ``path``, checked against ``net``'s final layer (its classes and filters)."""
    from xai_serve.decomposition.indices import load_indices
    from xai_serve.models.decomposed import find_head

    head = find_head(net)
    return load_indices(path, num_classes=head.num_classes, num_filters=head.num_filters)


def _k_path(out: Path, k: str, several: bool) -> Path:
    return out if not several else out.with_name(f"{out.stem}_k{k}{out.suffix or '.json'}")


@decompose_app.command("find")
def find_cmd(
    checkpoint: Path = typer.Argument(..., help="checkpoint directory or weights file"),
    k: list[float] = typer.Option(
        ..., "--k", help="filters per class (integer) or L1 mass (0 < k < 1); repeatable"
    ),
    out: Path = typer.Option(
        Path("indices.json"), "--out", help="index file (with several --k: OUT_k<k>.json)"
    ),
    dataset: str | None = _DATASET,
    split: str = typer.Option("train", "--split", help="split whose images vote (the original code: train)"),
    mass: float = typer.Option(0.9, "--mass", help="L1 mass for selectivity Psi (also every fractional k)"),
    batch_size: int = typer.Option(256, "--batch-size"),
    data_root: Path | None = _DATA_ROOT,
    model: str = _MODEL,
    device: str = _DEVICE,
) -> None:
    """Per-class influential filters of the final conv stage (index files) + selectivity report."""
    from xai_serve.decomposition.indices import save_indices
    from xai_serve.decomposition.runs import find_report
    from xai_serve.errors import XaiError

    dev = _device(device)
    try:
        net, bundle = _open(checkpoint, model, dataset, split, data_root)
        report = find_report(net, bundle, k, mass=mass, batch_size=batch_size, device=dev)
        several = len(report["k"]) > 1
        files = {}
        for key, indices in report["k"].items():
            path = _k_path(out, key, several)
            save_indices(path, indices)
            files[key] = str(path)
        report["files"] = files
        report_path = out.with_name(f"{out.stem}_report.json")
        _write_json(report_path, report)
    except XaiError as exc:
        _fail(str(exc))
    typer.echo(
        f"layer: {report['layer']}  ({report['images']} {report['split']} images of {report['dataset']})"
    )
    for key, written in files.items():
        sizes = [len(s) for s in report["k"][key]]
        typer.echo(f"k={key}: {written} (filters per class {min(sizes)}..{max(sizes)})")
    for m, per in report["selectivity"].items():
        psi = [v["psi_median"] for v in per.values()]
        typer.echo(f"selectivity Psi at mass {m} (median per class): " + " ".join(f"{v:.3f}" for v in psi))
    typer.echo(f"report: {report_path}")


@decompose_app.command("validate")
def validate_cmd(
    checkpoint: Path = typer.Argument(..., help="checkpoint directory or weights file"),
    indices: Path = typer.Option(..., "--indices", help="index file (class -> filters)"),
    dataset: str | None = _DATASET,
    split: str = typer.Option("test", "--split"),
    batch_size: int = typer.Option(256, "--batch-size"),
    json_out: Path | None = typer.Option(None, "--json", help="also write the result as JSON"),
    data_root: Path | None = _DATA_ROOT,
    model: str = _MODEL,
    device: str = _DEVICE,
) -> None:
    """Accuracy of the original vs the decomposed final layer on a dataset split."""
    from xai_serve.decomposition.runs import validate
    from xai_serve.errors import XaiError

    dev = _device(device)
    try:
        net, card = _open_model(checkpoint, model)
        sets = _indices_for(net, indices)
        bundle = _open_split(card, dataset, split, data_root)
        result = validate(net, sets, bundle, batch_size, device=dev)
        if json_out is not None:
            _write_json(json_out, result)
    except XaiError as exc:
        _fail(str(exc))
    typer.echo(f"{result['dataset']} {result['split']} ({result['images']} images), layer {result['layer']}")
    typer.echo(f"original accuracy:   {100 * result['original_accuracy']:.2f} %")
    typer.echo(f"decomposed accuracy: {100 * result['decomposed_accuracy']:.2f} %")


@decompose_app.command("essential")
def essential_cmd(
    checkpoint: Path = typer.Argument(..., help="checkpoint directory or weights file (ours)"),
    indices: Path = typer.Option(..., "--indices", help="index file of ours"),
    csg: Path | None = typer.Option(None, "--csg", help="converted CSG checkpoint directory (convert-csg)"),
    csg_indices_file: Path | None = typer.Option(
        None, "--csg-indices", help="CSG index file (the original code's)"
    ),
    csg_k: int = typer.Option(5, "--csg-k", help="without --csg-indices: k filters per class from the gate"),
    csg_order: str = typer.Option(
        "descending", "--csg-order", help="seed_ascending | descending (gate order)"
    ),
    dataset: str | None = _DATASET,
    split: str = typer.Option("test", "--split"),
    seed: int = typer.Option(0, "--seed", help="noise generator seed"),
    batch_size: int = typer.Option(8, "--batch-size"),
    out: Path = typer.Option(Path("results_essential_features.json"), "--out"),
    data_root: Path | None = _DATA_ROOT,
    model: str = _MODEL,
    device: str = _DEVICE,
) -> None:
    """Gaussian-noise test: noise at the influential vs the other filters, images still correct per class."""
    from xai_serve.decomposition.csg import csg_indices, load_gate
    from xai_serve.decomposition.runs import essential
    from xai_serve.errors import XaiError

    dev = _device(device)
    try:
        net, card = _open_model(checkpoint, model)
        runs = {"ours": (net, _indices_for(net, indices))}
        if csg is not None:
            csg_net, _ = _open_model(csg, model)
            if csg_indices_file is not None:
                sets = _indices_for(csg_net, csg_indices_file)
            else:
                sets = csg_indices(load_gate(csg), csg_k, csg_order)
            runs["csg"] = (csg_net, sets)
        bundle = _open_split(card, dataset, split, data_root)
        result = essential(runs, bundle, seed=seed, batch_size=batch_size, device=dev)
        _write_json(out, result)
    except XaiError as exc:
        _fail(str(exc))
    for name, per in result.items():
        typer.echo(f"{name}: class  noise_at_inf  noise_at_noninf  images")
        for c, v in per.items():
            typer.echo(
                f"{name}: {c:>5}  {v['noise_at_inf']:>12}  {v['noise_at_noninf']:>15}  {v['images']:>6}"
            )
    typer.echo(f"written: {out} (seed {seed})")


@decompose_app.command("mi")
def mi_cmd(
    inputs: list[Path] = typer.Argument(
        ..., help="index files (.json) and/or CSG gates (gate.pt or a converted dir)"
    ),
    json_out: Path = typer.Option(
        ..., "--json", help="output JSON {name: {k: {mean_all_pairs, mean_off_diagonal}}}"
    ),
    csg_order: str = typer.Option(
        "seed_ascending", "--csg-order", help="seed_ascending | descending (gates)"
    ),
    filters: int | None = typer.Option(
        None, "--filters", help="filters in the layer (default: gate width or 64)"
    ),
) -> None:
    """Mutual information between class filter sets (mean over all class pairs and off-diagonal)."""
    from xai_serve.decomposition.mutual_info import markdown_table
    from xai_serve.decomposition.runs import mutual_info_inputs
    from xai_serve.errors import XaiError

    try:
        results = mutual_info_inputs(inputs, csg_order=csg_order, num_filters=filters)
        _write_json(json_out, {n: {k: v.to_dict() for k, v in per.items()} for n, per in results.items()})
    except XaiError as exc:
        _fail(str(exc))
    typer.echo("mean MI over all class pairs (the Decomposing the Deep code's table):")
    typer.echo(markdown_table(results, key="mean_all_pairs"))
    typer.echo("\nmean MI over off-diagonal pairs:")
    typer.echo(markdown_table(results, key="mean_off_diagonal"))


@decompose_app.command("finetune")
def finetune_cmd(
    src: Path = typer.Argument(..., help="source checkpoint directory (never modified)"),
    indices: Path = typer.Option(..., "--indices", help="index file (class -> filters)"),
    recipe: Path = typer.Option(
        ..., "--recipe", help="recipe of the fine-tuning run (its model section is replaced)"
    ),
    out: Path = typer.Option(..., "--out", help="new checkpoint directory"),
    resume: bool = typer.Option(False, "--resume", help="continue an interrupted run in --out"),
    force: bool = typer.Option(False, "--force", help="overwrite an existing --out"),
    quiet: bool = typer.Option(False, "--quiet", help="no progress bars"),
) -> None:
    """Fine-tune the decomposed model (all parameters; masked entries stay zero) via the training runner."""
    from xai_serve.decomposition.runs import finetune_decomposed
    from xai_serve.errors import XaiError

    try:
        result = finetune_decomposed(
            src, indices, recipe, out, resume=resume, force=force, progress=not quiet
        )
    except XaiError as exc:
        _fail(str(exc))
    if not result.completed:
        typer.echo(f"stopped after epoch {result.epochs_done}; continue with --resume")
        return
    typer.echo(f"checkpoint: {result.out_dir}\ntest accuracy (decomposed): {result.metrics['accuracy']:.4f}")


@decompose_app.command("convert-csg")
def convert_csg_cmd(
    src: Path = typer.Argument(
        ..., help="the Decomposing the Deep CSG checkpoint (resnet20_csg.pth; trusted)"
    ),
    out: Path = typer.Option(
        ..., "--out", help="checkpoint directory to write (model.json, best.pt, gate.pt)"
    ),
) -> None:
    """Convert the CSG checkpoint ONCE into a weights-only checkpoint directory + gate tensor."""
    from xai_serve.decomposition.csg import convert_csg_checkpoint, load_gate
    from xai_serve.errors import XaiError

    try:
        path = convert_csg_checkpoint(src, out)
        gate = load_gate(path)
    except XaiError as exc:
        _fail(str(exc))
    typer.echo(
        f"written: {path} (gate {tuple(gate.shape)}, values {float(gate.min()):.3f}..{float(gate.max()):.3f})"
    )


def register(app: typer.Typer) -> None:
    """Add ``xai decompose ...`` to ``app``."""
    app.add_typer(decompose_app, name="decompose")
