"""``make demo`` (``xai demo``): the main job on the built-in digits data.

Step 1 (foundation): make sure the default model exists: train ``training/digits_simplenet.toml`` into
``runs/digits_simplenet/`` unless that checkpoint is complete (an interrupted run is resumed), then
print its test metrics. Later steps (archive, serve, explain) extend :func:`run_demo` and receive the
checkpoint directory from :func:`ensure_default_model`.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

DEFAULT_RECIPE = Path("training") / "digits_simplenet.toml"
DEFAULT_CHECKPOINT = Path("runs") / "digits_simplenet"
COMPLETE_FILES = ("model.json", "best.pt", "metrics.json")


def _recipe_path(recipe: Path) -> Path:
    """``recipe`` relative to the working directory, else to the source checkout."""
    if recipe.is_file() or recipe.is_absolute():
        return recipe
    in_checkout = Path(__file__).resolve().parents[2] / recipe
    return in_checkout if in_checkout.is_file() else recipe


def ensure_default_model(recipe: Path = DEFAULT_RECIPE, out: Path = DEFAULT_CHECKPOINT) -> Path:
    """Return the checkpoint directory of ``recipe``, training it first if it is missing or incomplete."""
    from xai_serve.training import load_recipe, train

    if all((out / name).is_file() for name in COMPLETE_FILES):
        print(f"[demo] using the existing checkpoint {out} (delete it to retrain)")
        return out
    spec = load_recipe(_recipe_path(recipe))
    resume = (out / "resume.pt").is_file()
    action = "resuming" if resume else "training"
    print(
        f"[demo] {action} {spec.name}: {spec.model.name} on {spec.data.name}, {spec.epochs} epochs -> {out}"
    )
    tic = time.perf_counter()
    train(spec, out, resume=resume, force=not resume)
    print(f"[demo] trained in {time.perf_counter() - tic:.1f} s wall time")
    return out


def format_metrics(metrics: dict[str, Any]) -> str:
    """Human-readable summary of a ``metrics.json``."""
    correct = metrics["n"] - metrics["misclassified"]
    lines = [
        f"test accuracy {metrics['accuracy']:.4f} ({correct}/{metrics['n']}), "
        f"macro F1 {metrics['macro_f1']:.4f}; best epoch {metrics['best_epoch']}/{metrics['epochs']} "
        f"(val accuracy {metrics['best_val_accuracy']:.4f}), seed {metrics['seed']}",
        "class  precision  recall  f1      support",
    ]
    for label, row in metrics["per_class"].items():
        lines.append(
            f"{label:<6} {row['precision']:<10.4f} {row['recall']:<7.4f} {row['f1']:<7.4f} {row['support']}"
        )
    lines.append("confusion matrix (rows true, columns predicted):")
    lines += ["  " + " ".join(f"{v:3d}" for v in row) for row in metrics["confusion_matrix"]]
    return "\n".join(lines)


def print_metrics(ckpt: Path) -> dict[str, Any]:
    metrics: dict[str, Any] = json.loads((ckpt / "metrics.json").read_text(encoding="utf-8"))
    print(f"[demo] {metrics['model']} on {metrics['dataset']} ({ckpt}):")
    print(format_metrics(metrics))
    print(
        f"[demo] files: {ckpt}/metrics.json, confusion_matrix.png, history.csv, "
        f"misclassified/ ({metrics['misclassified']} PNGs), best.pt, model.json"
    )
    return metrics


def run_demo() -> None:
    """Train (if needed) and report the default model; the serving steps follow (hook below)."""
    ckpt = ensure_default_model()
    print_metrics(ckpt)
    # serving: archive `ckpt`, start TorchServe, explain test images over gRPC with every method, stop
    from xai_serve.app.serving_section import serve_and_report
    from xai_serve.evaluation.certify import demo_certify  # issue 15: credentials of every method

    creds = demo_certify(ckpt, Path("demo") / "credentials", log=lambda msg: print(f"[demo] {msg}"))
    tic = time.perf_counter()
    report = serve_and_report(
        ckpt, out_dir=Path("demo"), credentials=creds, log=lambda msg: print(f"[demo] {msg}")
    )
    print(f"[demo] served and explained in {time.perf_counter() - tic:.1f} s")
    from xai_serve.app.dissection_section import demo_section  # seed C: `xai dissect`, linked from the report

    tic = time.perf_counter()
    dissection = demo_section(ckpt, report)
    print(f"[demo] dissection report: {dissection.resolve()} ({time.perf_counter() - tic:.1f} s)")
    from xai_serve.app.decomposition_section import decomposed_section, link_from_report  # seed E

    tic = time.perf_counter()
    decomposed_section(ckpt, report.parent, log=lambda msg: print(f"[demo] {msg}"))
    link_from_report(report)
    page = report.parent / "decomposed.html"
    print(f"[demo] decomposed-layer page: {page.resolve()} ({time.perf_counter() - tic:.1f} s)")
    from xai_serve.app.pattern_theory_section import (
        gpt_section,  # seed A: GPT model, class + component heatmaps
    )

    tic = time.perf_counter()
    gpt_page = gpt_section(report, log=lambda msg: print(f"[demo] {msg}"))
    print(f"[demo] GPT page: {gpt_page.resolve()} ({time.perf_counter() - tic:.1f} s)")
    print(f"[demo] report: {report.resolve()}")
