"""The evaluation suites: each runs batch by batch into a ``RunDir`` and assembles its outputs."""

from xai_serve.evaluation.suites.basic import BasicOptions, run_basic
from xai_serve.evaluation.suites.faithfulness import FaithfulnessOptions, run_faithfulness
from xai_serve.evaluation.suites.feature_removal import FeatureRemovalOptions, run_feature_removal
from xai_serve.evaluation.suites.randomisation import RandomisationOptions, run_randomisation

SUITES = ("basic", "faithfulness", "feature-removal", "randomisation")

__all__ = [
    "SUITES",
    "BasicOptions",
    "FaithfulnessOptions",
    "FeatureRemovalOptions",
    "RandomisationOptions",
    "run_basic",
    "run_faithfulness",
    "run_feature_removal",
    "run_randomisation",
]
