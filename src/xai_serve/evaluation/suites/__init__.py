"""The evaluation suites' implementations: each runs batch by batch into a ``RunDir`` and assembles
its outputs. Suites are declared (options, CLI, run function) in :mod:`xai_serve.evaluation.specs`
and listed by :func:`xai_serve.evaluation.registry.list_suites`."""

from xai_serve.evaluation.suites.basic import BasicOptions, run_basic
from xai_serve.evaluation.suites.faithfulness import FaithfulnessOptions, run_faithfulness
from xai_serve.evaluation.suites.feature_removal import FeatureRemovalOptions, run_feature_removal
from xai_serve.evaluation.suites.randomisation import RandomisationOptions, run_randomisation

__all__ = [
    "BasicOptions",
    "FaithfulnessOptions",
    "FeatureRemovalOptions",
    "RandomisationOptions",
    "run_basic",
    "run_faithfulness",
    "run_feature_removal",
    "run_randomisation",
]
