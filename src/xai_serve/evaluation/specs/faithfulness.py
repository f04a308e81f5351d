"""Suite ``faithfulness`` (declaration): pixel flipping / region perturbation, AOPC, AUC, ABPC."""

from __future__ import annotations

from dataclasses import dataclass

from xai_serve.errors import InvalidParameterError
from xai_serve.evaluation.options import opt
from xai_serve.evaluation.registry import Suite, register_suite

KINDS = ("pixel", "region")


@dataclass
class FaithfulnessOptions:
    kinds: list[str] = opt(list(KINDS), "pixel,region")
    orders: list[str] = opt(["morf", "lerf"], "morf,lerf[,random]")
    baseline: str = opt("black", "black | zero | mean | uniform | blur")
    features_in_step: int = opt(1, "pixel flipping: pixels removed per step", flag="--step")
    pixel_steps: int | None = opt(None, "pixel flipping: max steps (default: until all removed)")
    patch_size: int = opt(4, "region perturbation: tile size")
    region_steps: int | None = opt(None, "region perturbation: max regions (default: every tile)")
    output: str = opt("softmax", "score: softmax | logit")
    target: str = opt("true", "class explained and scored: true | predicted")
    single_pixel: bool = opt(False, "also seed A's aopc_single_pixel variant")
    single_pixel_steps: int = opt(75, "steps of aopc_single_pixel")
    blur_sigma: float = opt(2.0, "sigma of the blur baseline")
    batch_size: int = opt(16, "images per stored batch (the unit of resumption and of distribution)")
    forward_batch: int = opt(2048, "inputs per forward pass")

    def validate(self) -> None:
        from xai_serve.evaluation.ordering import ORDERS

        for k in self.kinds:
            if k not in KINDS:
                raise InvalidParameterError(f"kind must be one of {', '.join(KINDS)}; got {k!r}")
        for o in self.orders:
            if o not in ORDERS:
                raise InvalidParameterError(f"order must be one of {', '.join(ORDERS)}; got {o!r}")
        if not self.kinds and not self.single_pixel:
            raise InvalidParameterError("nothing to compute: no kinds and no single-pixel variant")


SUITE = register_suite(
    Suite(
        name="faithfulness",
        help="Pixel flipping / region perturbation curves (MoRF, LeRF), AOPC, AUC, ABPC per method.",
        options=FaithfulnessOptions,
        run="xai_serve.evaluation.suites.faithfulness:run_faithfulness",
        verdict="xai_serve.evaluation.verdicts:faithfulness",
    )
)
