"""Suite ``basic`` (declaration): accuracy, per-class precision / recall / F1, predictions."""

from __future__ import annotations

from dataclasses import dataclass

from xai_serve.evaluation.options import opt
from xai_serve.evaluation.registry import Suite, register_suite


@dataclass
class BasicOptions:
    seed_parity: bool = opt(False, "seed A's swapped precision/recall column labels")
    batch_size: int = opt(256, "images per batch")


SUITE = register_suite(
    Suite(
        name="basic",
        help="Accuracy, per-class precision/recall/F1 (basic.csv, basic_summary.csv), predictions.",
        options=BasicOptions,
        run="xai_serve.evaluation.suites.basic:run_basic",
        uses_methods=False,
        defaults={"samples": None},
        verdict="xai_serve.evaluation.verdicts:basic",
    )
)
