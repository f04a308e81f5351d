"""Neuron dissection with compositional explanations (Mu & Andreas 2020, docs/methods.md#compexp).

``best_formula(unit, concepts)`` is the pure entry point; :class:`Searcher` runs the packed-bitset
beam search for many units over a :class:`ConceptStore`; ``xai dissect`` (commands.py) drives a
whole layer through :mod:`xai_serve.dissection.runner` (activations memory map, thresholds, unit
masks, resumable parts per unit range, shard + merge, CSV / HTML / history outputs).
Attributes are imported lazily so that ``xai --help`` stays fast.
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "ConceptStore": "xai_serve.dissection.concepts",
    "Searcher": "xai_serve.dissection.search",
    "UnitResult": "xai_serve.dissection.search",
    "best_formula": "xai_serve.dissection.search",
    "UnitMask": "xai_serve.dissection.units",
    "thresholds": "xai_serve.dissection.units",
    "unit_masks": "xai_serve.dissection.units",
    "upsample": "xai_serve.dissection.units",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        return getattr(importlib.import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module 'xai_serve.dissection' has no attribute {name!r}")
