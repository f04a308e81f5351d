"""Neuron dissection with compositional explanations (seed C, reference/methods.md C.1-C.6).

``best_formula(unit, concepts)`` is the pure entry point; :class:`Searcher` runs the packed-bitset
beam search for many units over a :class:`ConceptStore`; ``xai dissect`` (commands.py) drives a
whole layer through :mod:`xai_serve.dissection.runner` (activations memory map, thresholds, unit
masks, resumable parts per unit range, shard + merge, CSV / HTML / history outputs).
"""

from xai_serve.dissection.concepts import ConceptStore
from xai_serve.dissection.search import Searcher, UnitResult, best_formula
from xai_serve.dissection.units import UnitMask, thresholds, unit_masks, upsample

__all__ = [
    "ConceptStore",
    "Searcher",
    "UnitMask",
    "UnitResult",
    "best_formula",
    "thresholds",
    "unit_masks",
    "upsample",
]
