"""Offline evaluation of models and their explanations (``xai evaluate``).

Numerics (testable with any model and any attribution callable ``(x, target) -> Tensor``):

- ``baselines``: replacement values (black, zero, mean, uniform, blur),
- ``ordering``: removal orders as removal-step maps (pixel flipping, region perturbation),
- ``perturbation``: batched perturbation curves,
- ``scores``: AOPC, AUC, ABPC; ``single_pixel_aopc``: seed A's ``aopc_single_pixel`` variant,
- ``basic``: accuracy, per-class precision / recall / F1 (with seed A's label parity switch),
- ``randomisation`` + ``similarity``: model-parameter randomisation sanity checks.

Runs: ``context`` (model + samples + attribution functions), ``store`` (atomic, resumable run
directories), ``suites`` (basic, faithfulness, feature-removal, randomisation), ``plots``,
``report`` (report.html), ``commands`` (the CLI).
"""

from xai_serve.evaluation.baselines import BASELINES, make_baseline
from xai_serve.evaluation.context import EvalContext, engine_attributions
from xai_serve.evaluation.ordering import ORDERS, pixel_steps, region_steps
from xai_serve.evaluation.perturbation import perturbation_curves, pixel_flipping, region_perturbation
from xai_serve.evaluation.scores import abpc, aopc, auc
from xai_serve.evaluation.single_pixel_aopc import aopc_single_pixel
from xai_serve.evaluation.store import RunDir

__all__ = [
    "BASELINES",
    "ORDERS",
    "EvalContext",
    "RunDir",
    "abpc",
    "aopc",
    "aopc_single_pixel",
    "auc",
    "engine_attributions",
    "make_baseline",
    "perturbation_curves",
    "pixel_flipping",
    "pixel_steps",
    "region_perturbation",
    "region_steps",
]
