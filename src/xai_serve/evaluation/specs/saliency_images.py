"""Suite ``saliency-images`` (declaration, seed B.2): the seed's guided-backprop image exports."""

from __future__ import annotations

from dataclasses import dataclass

from xai_serve.evaluation.options import opt
from xai_serve.evaluation.registry import Suite, register_suite


@dataclass
class SaliencyImagesOptions:
    target: str = opt("true", "class explained: true | predicted")
    seed_names: bool = opt(True, "name files as the seed: NAME_Guided_BP_color/_gray, NAME_pos_sal/_neg_sal")
    batch_size: int = opt(16, "images per stored batch")


SUITE = register_suite(
    Suite(
        name="saliency-images",
        help="Seed B's exports per sample and method: colour, grey-scale (P99-clipped), positive and "
        "negative saliency PNGs.",
        options=SaliencyImagesOptions,
        run="xai_serve.evaluation.suites.saliency_images:run_saliency_images",
        defaults={"samples": 8, "methods": ["guided_backprop"]},
        verdict="xai_serve.evaluation.verdicts:saliency_images",
    )
)
