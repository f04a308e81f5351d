"""``train`` / ``finetune`` / resume: run a recipe and write its checkpoint directory.

Checkpoint directory (the contract in TEAM.md, read by ``xai_serve.models.load_checkpoint``)::

    model.json            ModelCard (model name + kwargs, dataset, input shape, mean/std, labels)
    recipe.toml           the recipe as run (every default filled in)
    weights.pt            state_dict after the last finished epoch
    best.pt               state_dict of the epoch with the best validation accuracy
    resume.pt             optimiser, scheduler, epoch, history and RNG states for --resume
    history.csv           one row per epoch
    metrics.json          test metrics of best.pt (accuracy, per-class P/R/F1, confusion matrix)
    confusion_matrix.png  the test confusion matrix
    misclassified/        test images best.pt gets wrong, ``<index>_true<c>_pred<c>.png``

Every file is written atomically, and ``resume.pt`` last in each epoch, so an interrupted run
resumes from its last finished epoch with bit-identical results.
"""

from __future__ import annotations

import dataclasses
import shutil
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn
from torch.utils.data import DataLoader

from xai_serve.atomic import atomic_torch_save, atomic_write_bytes, atomic_write_text
from xai_serve.data import DatasetBundle, load_dataset
from xai_serve.data.input_stats import input_stats
from xai_serve.errors import CheckpointError, RecipeError
from xai_serve.models import ModelCard, create_model, load_checkpoint, model_parameters
from xai_serve.models.multi_output import output_names
from xai_serve.training.loop import evaluate, train_epoch
from xai_serve.training.losses import PARTS, LossMonitor, make_criterion
from xai_serve.training.recipe import ModelSection, Recipe, load_recipe
from xai_serve.training.reports import (
    classification_metrics,
    image_png,
    misclassified_name,
    write_confusion_png,
    write_history,
    write_json,
)
from xai_serve.training.state import capture_rng, restore_rng, seed_everything

RUNS_DIR = Path("runs")
MARKERS = ("model.json", "recipe.toml", "resume.pt", "weights.pt")


@dataclass
class RunResult:
    """Outcome of :func:`train`: ``completed`` is False when stopped early by ``stop_after_epoch``."""

    out_dir: Path
    completed: bool
    epochs_done: int
    metrics: dict[str, Any]


def default_out_dir(recipe: Recipe) -> Path:
    return RUNS_DIR / recipe.name


def resolve_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise RecipeError("recipe key 'device' is 'cuda' but no CUDA device is available")
    return torch.device(name)


def load_splits(recipe: Recipe) -> dict[str, DatasetBundle]:
    d = recipe.data
    common: dict[str, Any] = {
        "root": d.root or None,
        "seed": d.split_seed,
        "channels": d.channels or None,
        **d.options,
    }
    if d.val_fraction:
        common["val_fraction"] = d.val_fraction
    splits = {}
    for split in ("train", "val", "test"):
        options = dict(common)
        if d.augment and split == "train":
            options["augment"] = True
        splits[split] = load_dataset(d.name, split, **options)
    return splits


def resolve_model_kwargs(section: ModelSection, bundle: DatasetBundle) -> dict[str, Any]:
    """The recipe's kwargs plus num_classes / in_chans / input_shape from the dataset where accepted."""
    accepted = model_parameters(section.name)
    kwargs = dict(section.kwargs)
    if "num_classes" in accepted:
        kwargs.setdefault("num_classes", bundle.num_classes)
    if "in_chans" in accepted:
        kwargs.setdefault("in_chans", bundle.input_shape[0])
    if "input_shape" in accepted and "in_features" not in kwargs:
        kwargs.setdefault("input_shape", list(bundle.input_shape))
    return kwargs


def make_optimizer(recipe: Recipe, model: nn.Module) -> torch.optim.Optimizer:
    o = recipe.optimizer
    if o.name == "sgd":
        return torch.optim.SGD(model.parameters(), lr=o.lr, momentum=o.momentum, weight_decay=o.weight_decay)
    if o.name == "adam":
        return torch.optim.Adam(
            model.parameters(),
            lr=o.lr,
            betas=(o.betas[0], o.betas[1]),
            weight_decay=o.weight_decay,
            eps=o.eps or 1e-8,
        )
    return torch.optim.Adadelta(
        model.parameters(), lr=o.lr, rho=o.rho, eps=o.eps or 1e-6, weight_decay=o.weight_decay
    )


def make_scheduler(
    recipe: Recipe, optimizer: torch.optim.Optimizer
) -> torch.optim.lr_scheduler.LRScheduler | None:
    s = recipe.schedule
    if s.name == "step":
        return torch.optim.lr_scheduler.StepLR(optimizer, step_size=s.step_size, gamma=s.gamma)
    if s.name == "multistep":
        return torch.optim.lr_scheduler.MultiStepLR(optimizer, milestones=s.milestones, gamma=s.gamma)
    if s.name == "cosine":
        return torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=recipe.epochs)
    return None


def _prepare_out_dir(out: Path, recipe: Recipe, resume: bool, force: bool) -> bool:
    """Create/validate ``out``; returns True when a resume state is to be loaded."""
    if resume and (out / "resume.pt").is_file():
        saved = load_recipe(out / "recipe.toml").to_dict()
        given = recipe.to_dict()
        for key in given:
            if key not in ("epochs", "name") and given[key] != saved.get(key):
                raise RecipeError(f"recipe key {key!r} differs from the run being resumed in {out}")
        return True
    if resume:
        raise CheckpointError(f"nothing to resume: {out / 'resume.pt'} does not exist")
    if out.exists() and any(out.iterdir()):
        if not force:
            raise CheckpointError(f"{out} already exists; pass --force to overwrite or --resume to continue")
        if not any((out / m).exists() for m in MARKERS):
            raise CheckpointError(f"refusing to delete {out}: it does not look like a checkpoint directory")
        shutil.rmtree(out)
    out.mkdir(parents=True, exist_ok=True)
    return False


def _loader(bundle: DatasetBundle, batch_size: int, generator: torch.Generator | None) -> DataLoader[Any]:
    return DataLoader(
        bundle.dataset,
        batch_size=batch_size,
        shuffle=generator is not None,
        generator=generator,
        num_workers=0,
    )


def train(
    recipe: Recipe,
    out_dir: str | Path | None = None,
    *,
    resume: bool = False,
    force: bool = False,
    init_state: dict[str, torch.Tensor] | None = None,
    extra_metrics: dict[str, Any] | None = None,
    stop_after_epoch: int | None = None,
    progress: bool = True,
) -> RunResult:
    """Run ``recipe`` and write its checkpoint directory ``out_dir`` (default ``runs/<name>``).

    ``resume`` continues from ``out_dir/resume.pt``; an existing ``out_dir`` is otherwise refused
    unless ``force``. ``init_state`` (a state_dict) starts from given weights (fine-tuning).
    ``stop_after_epoch`` ends the run early as an interruption would (used by tests).
    """
    out = Path(out_dir) if out_dir is not None else default_out_dir(recipe)
    resuming = _prepare_out_dir(out, recipe, resume, force)
    if recipe.num_threads:
        torch.set_num_threads(recipe.num_threads)
    device = resolve_device(recipe.device)
    seed_everything(recipe.seed)
    splits = load_splits(recipe)
    train_bundle = splits["train"]
    kwargs = resolve_model_kwargs(recipe.model, train_bundle)
    model = create_model(recipe.model.name, **kwargs)
    if init_state is not None:
        model.load_state_dict(init_state)
    model.to(device)
    optimizer = make_optimizer(recipe, model)
    scheduler = make_scheduler(recipe, optimizer)
    generator = torch.Generator()
    generator.manual_seed(recipe.seed)
    criterion = make_criterion(recipe.loss)
    monitor = LossMonitor(recipe.loss) if recipe.loss.name != "cross_entropy" else None
    train_data = train_bundle.dataset
    if criterion.components:
        if not hasattr(train_data, "with_components"):
            raise RecipeError(
                f"loss {recipe.loss.name!r} needs per-pixel targets; dataset "
                f"{recipe.data.name!r} has none (use pattern_digits)"
            )
        train_data = train_data.with_components()
    train_loader = DataLoader(
        train_data, batch_size=recipe.batch_size, shuffle=True, generator=generator, num_workers=0
    )
    val_loader = _loader(splits["val"], max(recipe.batch_size, 256), None)
    # the card rebuilds the architecture; initial weights (a "weights" path) are not part of it
    card_kwargs = {k: v for k, v in kwargs.items() if k != "weights"}
    card = ModelCard(
        model=recipe.model.name,
        model_kwargs=card_kwargs,
        dataset=recipe.data.name,
        input_shape=list(train_bundle.input_shape),
        mean=list(train_bundle.mean),
        std=list(train_bundle.std),
        labels=list(train_bundle.labels),
        outputs=list(output_names(model)),
        input_stats=input_stats(train_bundle),
    )

    start, best_val, best_loss, best_epoch, seconds = 1, -1.0, float("inf"), 0, 0.0
    history: list[dict[str, Any]] = []
    if resuming:
        state = torch.load(out / "resume.pt", map_location="cpu", weights_only=True)
        model.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        if scheduler is not None:
            scheduler.load_state_dict(state["scheduler"])
        start, best_val, best_epoch = state["epoch"] + 1, state["best_val"], state["best_epoch"]
        best_loss = state["best_loss"]
        history, seconds = list(state["history"]), state["seconds"]
        restore_rng(state["rng"], generator)
    card.save(out / "model.json")
    atomic_write_text(out / "recipe.toml", recipe.to_toml())

    for epoch in range(start, recipe.epochs + 1):
        tic = time.perf_counter()
        lr = optimizer.param_groups[0]["lr"]
        first_iter = len(monitor.parts) if monitor is not None else 0
        train_loss, train_acc = train_epoch(
            model,
            train_loader,
            optimizer,
            device,
            f"{recipe.name} epoch {epoch}/{recipe.epochs}",
            progress,
            criterion,
            monitor,
        )
        val = evaluate(model, val_loader, device)
        if scheduler is not None:
            scheduler.step()
        # best = highest validation accuracy; ties (small val sets saturate) go to the lower val loss
        improved = val.accuracy > best_val or (val.accuracy == best_val and val.loss < best_loss)
        weights = {k: v.detach().cpu().clone() for k, v in model.state_dict().items()}
        atomic_torch_save(out / "weights.pt", weights)
        if recipe.loss.keep_best == "running_loss":  # the paper's NICE2 rule: the monitor's best
            improved = monitor is not None and monitor.best_state is not None
            if improved and monitor is not None and monitor.best_state is not None:
                best_val, best_loss, best_epoch = val.accuracy, val.loss, epoch
                atomic_torch_save(out / "best.pt", monitor.best_state)
                monitor.best_state = None
            elif not (out / "best.pt").exists():
                atomic_torch_save(out / "best.pt", weights)  # nothing was best yet: keep the last
        elif improved:
            best_val, best_loss, best_epoch = val.accuracy, val.loss, epoch
            atomic_torch_save(out / "best.pt", weights)
        seconds += time.perf_counter() - tic
        history.append(
            {
                "epoch": epoch,
                "lr": lr,
                "train_loss": round(train_loss, 6),
                "train_acc": round(train_acc, 6),
                "val_loss": round(val.loss, 6),
                "val_acc": round(val.accuracy, 6),
                "seconds": round(time.perf_counter() - tic, 3),
                "best": improved,
                **_part_losses(monitor, first_iter),
            }
        )
        write_history(out / "history.csv", history)
        atomic_torch_save(
            out / "resume.pt",
            {
                "model": model.state_dict(),
                "optimizer": optimizer.state_dict(),
                "scheduler": scheduler.state_dict() if scheduler is not None else {},
                "epoch": epoch,
                "best_val": best_val,
                "best_loss": best_loss,
                "best_epoch": best_epoch,
                "history": history,
                "seconds": seconds,
                "rng": capture_rng(generator),
            },
        )
        if stop_after_epoch is not None and epoch >= stop_after_epoch and epoch < recipe.epochs:
            return RunResult(out, False, epoch, {})
        if monitor is not None and monitor.stopped:  # the loss thresholds are reached
            break

    metrics = write_test_report(out, splits["test"], device)
    metrics.update(
        {
            "best_epoch": best_epoch,
            "best_val_accuracy": best_val,
            "epochs": recipe.epochs,
            "seed": recipe.seed,
            "train_seconds": round(seconds, 2),
            **(extra_metrics or {}),
        }
    )
    write_json(out / "metrics.json", metrics)
    return RunResult(out, True, recipe.epochs, metrics)


def _part_losses(monitor: LossMonitor | None, first: int) -> dict[str, float]:
    """Mean per-output training losses of the iterations from ``first`` on (multi-output losses)."""
    if monitor is None or len(monitor.parts) <= first:
        return {}
    rows = monitor.parts[first:]
    return {
        f"train_loss_{name}": round(sum(r[i] for r in rows) / len(rows), 6)
        for i, name in enumerate(PARTS[: len(rows[0])])
    }


def write_test_report(out: Path, test: DatasetBundle, device: torch.device) -> dict[str, Any]:
    """Evaluate ``best.pt`` on ``test``; write misclassified PNGs and the confusion-matrix PNG."""
    model, card = load_checkpoint(out, "best", device=device)
    result = evaluate(model, _loader(test, 256, None), device)
    metrics = {
        "split": "test",
        "weights": "best.pt",
        "dataset": card.dataset,
        "model": card.model,
        **classification_metrics(result.targets.numpy(), result.predictions.numpy(), card.labels),
    }
    folder = out / "misclassified"
    if folder.exists():
        shutil.rmtree(folder)
    folder.mkdir()
    wrong = torch.nonzero(result.targets != result.predictions).flatten().tolist()
    for index in wrong:
        x, _ = test.dataset[index]
        name = misclassified_name(index, int(result.targets[index]), int(result.predictions[index]))
        atomic_write_bytes(folder / name, image_png(test.denormalise(x)))
    metrics["misclassified"] = len(wrong)
    write_confusion_png(
        out / "confusion_matrix.png",
        metrics["confusion_matrix"],
        card.labels,
        f"{card.model} on {card.dataset} test: accuracy {metrics['accuracy']:.4f}",
    )
    return metrics


def finetune(
    src: str | Path,
    recipe: Recipe,
    out_dir: str | Path,
    *,
    force: bool = False,
    which: str = "best",
    progress: bool = True,
) -> RunResult:
    """Train ``recipe`` starting from the weights of checkpoint ``src`` into ``out_dir``.

    ``src`` is only read (never written); ``out_dir`` must differ from it and must not exist unless
    ``force``. The model comes from ``src``'s ModelCard; the recipe's ``model.name`` must match it.
    """
    source, out = Path(src).resolve(), Path(out_dir).resolve()
    if out == source or source in out.parents or out in source.parents:
        raise CheckpointError(f"finetune output {out} must not be, contain or lie inside the source {source}")
    model, card = load_checkpoint(source, "best" if which == "best" else "last")
    if recipe.model.name != card.model:
        raise RecipeError(
            f"recipe key 'model.name' is {recipe.model.name!r} but {source} holds {card.model!r}"
        )
    recipe = dataclasses.replace(recipe, model=ModelSection(card.model, dict(card.model_kwargs)))
    state = {k: v.detach().clone() for k, v in model.state_dict().items()}
    return train(
        recipe,
        out,
        force=force,
        init_state=state,
        progress=progress,
        extra_metrics={"finetuned_from": str(source)},
    )
