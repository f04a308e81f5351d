"""Suite ``feature-removal`` (declaration, seed D): remove the most / least relevant pixels."""

from __future__ import annotations

from dataclasses import dataclass

from xai_serve.evaluation.options import opt
from xai_serve.evaluation.registry import Suite, register_suite


@dataclass
class FeatureRemovalOptions:
    fraction: float = opt(0.1, "fraction of pixels removed")
    baseline: str = opt("black", "black | zero | mean | uniform | blur")
    target: str = opt("true", "class explained and scored: true | predicted")
    max_figures: int = opt(16, "PNG figures for the first N samples")
    signed: dict[str, bool] | None = None  # method -> diverging colour map (default: the engine's specs)
    blur_sigma: float = opt(2.0, "sigma of the blur baseline")
    batch_size: int = opt(32, "images per stored batch")
    curve_steps: int = opt(100, "removal curves: steps from none to all pixels (100: 1 percent each; 0: off)")


SUITE = register_suite(
    Suite(
        name="feature-removal",
        help="Original, heatmap, most / least relevant pixels removed, with class confidences (seed D).",
        options=FeatureRemovalOptions,
        run="xai_serve.evaluation.suites.feature_removal:run_feature_removal",
        verdict="xai_serve.evaluation.verdicts:feature_removal",
    )
)
