"""Offline evaluation of models and their explanations (``xai evaluate``).

Numerics (testable with any model and any attribution callable ``(x, target) -> Tensor``):

- ``baselines``: replacement values (black, zero, mean, uniform, blur),
- ``ordering``: removal orders as removal-step maps (pixel flipping, region perturbation),
- ``perturbation``: batched perturbation curves,
- ``scores``: AOPC, AUC, ABPC; ``single_pixel_aopc``: the General Pattern Theory ``aopc_single_pixel``
  variant,
- ``basic``: accuracy, per-class precision / recall / F1
  (with the General Pattern Theory code's label parity switch),
- ``pixel_metrics``: per-sample accuracy / precision / recall of predicted class maps,
- ``randomisation`` + ``similarity``: model-parameter randomisation sanity checks;
  ``component_randomisation``: the component-wise check of a model with component outputs;
  ``sanity_rule``: the one pass / fail rule of the check (credentials and reports).

Runs: ``context`` (model + samples + attribution functions), ``store`` (atomic, resumable run
directories), ``batches`` (the batch loop every suite shares), ``suites`` (one module per suite:
options, run, verdict), ``plots``, ``report`` (report.html), ``commands`` (the CLI).
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
