"""Levels of a model-parameter randomisation schedule (Adebayo et al. 2018, "Sanity Checks for
Saliency Maps"), and the levels a model declares for its component outputs.

A :class:`RandomisationLevel` names the parameters one level re-draws and the noise it draws them
from; the randomisation itself is :mod:`xai_serve.evaluation.randomisation`. A model with component
outputs (:mod:`xai_serve.models.multi_output`) declares the cumulative, top-down levels of its
component-wise check by a ``component_levels()`` method (:class:`DeclaresComponentLevels`), so the
evaluation needs no knowledge of the model family.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable

from xai_serve.errors import InvalidParameterError

#: the noises a level may draw from (see :func:`xai_serve.evaluation.randomisation.randomise`)
NOISES = ("reinit", "normal", "max_uniform")


@dataclass(frozen=True)
class RandomisationLevel:
    """One level of a schedule: a display name, the parameters and modules it randomises, its noise.

    ``noise``: ``reinit`` (each of ``modules`` re-initialised by its own ``reset_parameters``),
    ``normal`` (``w <- scale * N(0, 1)``) or ``max_uniform`` (``w <- max(w) * U(-1, 1) * scale``,
    the component-wise check of General Pattern Theory, Tjoa & Guan: ``max``, not ``max |w|``).
    """

    name: str
    params: tuple[str, ...]  # qualified parameter names (keys of model.named_parameters())
    modules: tuple[str, ...]  # modules re-initialised with reset_parameters (noise "reinit")
    noise: str
    scale: float = 1.0


@runtime_checkable
class DeclaresComponentLevels(Protocol):
    """A model with component outputs that declares its component-wise randomisation levels."""

    def component_levels(self) -> list[RandomisationLevel]: ...


def component_levels(model: Any) -> list[RandomisationLevel]:
    """The component-wise randomisation levels ``model`` declares (InvalidParameterError if none)."""
    if not isinstance(model, DeclaresComponentLevels):
        raise InvalidParameterError(
            f"{type(model).__name__} declares no component randomisation levels "
            "(a model with component outputs has a component_levels() method)"
        )
    return model.component_levels()
