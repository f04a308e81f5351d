"""An optional explainer capability: the contributions of a layer's units (channels) to an explanation.

A method that can say how much each unit of a layer contributes to one of its maps implements
:class:`UnitContributions`; NetDissect-style concept labels (Bau et al. 2017; compositional
explanations, Mu & Andreas 2020) then name the units that matter (:mod:`xai_serve.dissection.evidence`
asks for the capability, not for method names). Grad-CAM and guided Grad-CAM (channel weight times mean
activation), ``decomposed`` (its filter contributions) and ``layer_guided_backprop`` (its filter and
objective) implement it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Protocol, runtime_checkable

if TYPE_CHECKING:
    import numpy as np
    import torch

    from xai_serve.explain.registry import Attribution


@runtime_checkable
class UnitContributions(Protocol):
    """An explainer that can list the units of a layer with their contributions to one of its maps."""

    def unit_contributions(
        self, x: torch.Tensor, target: int, layer: str, attribution: Attribution, row: int
    ) -> np.ndarray | None:
        """(unit, contribution) rows, float64 ``(n, 2)``, for the map of row ``row`` of ``attribution``
        (this explainer's result), which explains input ``x`` (one sample, ``(C, H, W)``) for class
        ``target``, at the module named ``layer``; None when the method gives no evidence there."""
        ...
