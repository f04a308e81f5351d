"""The pass/fail rule of the explanation credentials' sanity check (``xai certify``).

Rule (cascading model-parameter randomisation, Adebayo et al. 2018, "Sanity Checks for Saliency
Maps", NeurIPS): randomise every parameterised layer of the model top-down (the ``standard``
schedule of :mod:`xai_serve.evaluation.randomisation`: each layer re-initialised with its own
initialiser under a seeded RNG), explain the same validation images with the original and with the
fully randomised model, and compare the two maps of each image with the Spearman rank
correlation of their absolute values (``spearman_abs`` of :mod:`xai_serve.evaluation.similarity`).

    a method PASSES iff |mean_i spearman(|A_orig(x_i)|, |A_rand(x_i)|)| < 0.5  (SANITY_THRESHOLD)

over the certified samples, and the mean is finite. A method whose maps survive the destruction
of every weight with a rank correlation of 0.5 or more shows structure that comes from the input
(edges, the digit's strokes), not from what the model learned: Adebayo et al. report exactly this
for guided backprop and for input x gradient, while the plain gradient's correlation falls to
near 0. The literature fixes no numeric threshold (Adebayo et al. read the curves; Quantus' MPRT
returns the raw correlation); 0.5, the conventional boundary between a weak and a moderate-to-
strong rank correlation, is this project's choice. It is recorded in every ``credentials.json``
and can be changed with ``xai certify --threshold``.

Why the magnitude, so that a strongly *negative* correlation fails too: the check asks whether the
map depends on the learned weights, i.e. whether the randomised model's map is *unrelated* to the
trained model's (correlation near 0). A rank correlation of -0.8 between the absolute maps is a
strong monotone relation: the randomised map ranks the pixels in nearly the reverse order, so the
trained map can be read off it (the digit's outline stays visible, with figure and ground swapped)
and the map still carries the input's structure rather than the model's. Low similarity means a
small |rho|; "lower than 0.5" on the signed value would certify such a method. The same function,
:meth:`SanityRule.passes`, decides ``credentials.json`` and the randomisation report's verdict.

The rule is a pure function of the measured correlations, so it is tested on constructed cases
(a method that ignores the weights fails; the gradient of a trained model passes).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

SANITY_THRESHOLD = 0.5
RULE_NAME = "cascading-randomisation-spearman-abs"
RULE_TEXT = (
    "pass iff the magnitude of the mean Spearman rank correlation between the absolute maps of the "
    "original model and of the fully (cascading, top-down, every parameterised layer) randomised model "
    "is below the threshold (Adebayo et al. 2018)"
)


@dataclass(frozen=True)
class SanityRule:
    """The documented rule with its threshold (see the module doc)."""

    threshold: float = SANITY_THRESHOLD
    name: str = RULE_NAME

    def __post_init__(self) -> None:
        if not (math.isfinite(self.threshold) and 0.0 < self.threshold <= 1.0):
            raise ValueError(f"sanity threshold must be in (0, 1], got {self.threshold}")

    def score(self, per_sample: Sequence[float]) -> float:
        """Mean correlation over samples, ignoring undefined (NaN) ones; NaN if none is defined."""
        vals = [float(v) for v in per_sample if math.isfinite(float(v))]
        return sum(vals) / len(vals) if vals else float("nan")

    def passes(self, score: float) -> bool:
        """The verdict on a mean correlation: finite and its magnitude below the threshold."""
        return math.isfinite(score) and abs(score) < self.threshold

    def check(self, per_sample: Sequence[float]) -> tuple[float, bool]:
        """(score, pass) of the per-sample correlations of the fully randomised model."""
        s = self.score(per_sample)
        return s, self.passes(s)

    def describe(self) -> dict[str, object]:
        return {
            "name": self.name,
            "threshold": self.threshold,
            "measure": "spearman_abs",
            "mode": "cascading",
            "level": "all layers randomised",
            "text": RULE_TEXT,
        }
