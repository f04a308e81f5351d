"""The demo's models: each a training recipe (``training/*.toml``) and the run directory it trains
into. A model is trained on first use (an interrupted run is resumed) and reused afterwards.

* :data:`DEFAULT`: SimpleNet-310k on the built-in digits, the model the demo serves and certifies;
* :data:`PATTERN_THEORY`: ResGPTNet (General Pattern Theory) on the pattern digits, drawn and dissected;
* :data:`DECOMPOSITION`: ResNet-20 (He et al. 2016) on the digits, whose 7x7 last stage is decomposed
  ("Decomposing the Deep").
* :data:`VIT`: a small vision transformer (torchvision's ViT layout) on the digits, on a short training
  budget (``training/digits_vit_demo.toml``), explained beside the CNN in the report.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

COMPLETE_FILES = ("model.json", "best.pt", "metrics.json")


@dataclass(frozen=True)
class DemoModel:
    recipe: Path
    checkpoint: Path

    def ensure(self) -> Path:
        return ensure_default_model(self.recipe, self.checkpoint)


DEFAULT = DemoModel(Path("training") / "digits_simplenet.toml", Path("runs") / "digits_simplenet")
PATTERN_THEORY = DemoModel(Path("training") / "gpt_demo.toml", Path("runs") / "gpt_demo")
DECOMPOSITION = DemoModel(Path("training") / "digits_resnet20.toml", Path("runs") / "digits_resnet20")
VIT = DemoModel(Path("training") / "digits_vit_demo.toml", Path("runs") / "digits_vit_demo")


def _recipe_path(recipe: Path) -> Path:
    """``recipe`` relative to the working directory, else to the source checkout."""
    if recipe.is_file() or recipe.is_absolute():
        return recipe
    in_checkout = Path(__file__).resolve().parents[3] / recipe
    return in_checkout if in_checkout.is_file() else recipe


def ensure_default_model(recipe: Path = DEFAULT.recipe, out: Path = DEFAULT.checkpoint) -> Path:
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
