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

from xai_serve.lazy import lazy_exports

_EXPORTS = {
    "BASELINES": "baselines",
    "make_baseline": "baselines",
    "EvalContext": "context",
    "engine_attributions": "context",
    "ORDERS": "ordering",
    "pixel_steps": "ordering",
    "region_steps": "ordering",
    "perturbation_curves": "perturbation",
    "pixel_flipping": "perturbation",
    "region_perturbation": "perturbation",
    "abpc": "scores",
    "aopc": "scores",
    "auc": "scores",
    "aopc_single_pixel": "single_pixel_aopc",
}
__all__ = sorted(_EXPORTS)  # imported on first use (torch stays out of `xai --help`)
__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
