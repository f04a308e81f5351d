"""Suite ``randomisation`` (declaration): cascading / independent parameter randomisation."""

from __future__ import annotations

from dataclasses import dataclass

from xai_serve.evaluation.options import opt
from xai_serve.evaluation.registry import Suite, register_suite

MODES = ("cascading", "independent")


@dataclass
class RandomisationOptions:
    modes: list[str] = opt(list(MODES), "cascading,independent")
    variant: str = opt(
        "standard",
        "standard | seed_a (seed A's layer order and noise) | components (seed A's component-wise "
        "cascade of yg / ys of a multi-output model, cascading only)",
    )
    pixels: int = opt(4, "variant components: predicted seed pixels explained per sample (at most)")
    target: str = opt("true", "class explained and scored: true | predicted")
    batch_size: int = opt(32, "images per stored batch")


SUITE = register_suite(
    Suite(
        name="randomisation",
        help="Cascading / independent parameter randomisation: Spearman (signed, abs) and SSIM per layer.",
        options=RandomisationOptions,
        run="xai_serve.evaluation.suites.randomisation:run_randomisation",
        defaults={"samples": 32},
        verdict="xai_serve.evaluation.verdicts:randomisation",
    )
)
