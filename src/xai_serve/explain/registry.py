"""The method registry: one name -> one :class:`Explainer` subclass with its declared parameters.

``list_methods()`` drives the CLI choices, the wire enum, the docs and the test sweep: adding a method is
one module with one ``@register_method`` class, nothing else.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar, Literal, TypeVar

import torch
from torch import nn

from xai_serve.errors import UnknownMethodError
from xai_serve.explain.params import ParamSpec, convert_params
from xai_serve.explain.targets import Target


@dataclass(frozen=True)
class MethodSpec:
    """What a client needs to know about a method.

    ``signed``: the map has a meaningful sign (render with a diverging colour map). ``output``:
    ``"heatmap"`` (relevance shaped like the input) or ``"image"`` (an input-space image, class_image).
    """

    name: str
    params: Mapping[str, ParamSpec]
    signed: bool
    output: Literal["heatmap", "image"]
    doc: str


@dataclass
class Attribution:
    """One method's result for a batch.

    ``heatmap`` is shaped like the input (B, C, H, W). ``stats`` holds per-sample figures (each list has
    B entries; LRP: ``relevance_sum``, ``target_score``, ``conservation``, ``bias_absorbed``).
    ``logits`` are the model outputs (B, K) of the forward pass the method used (shared between
    methods by :func:`~xai_serve.explain.explain_detailed`), detached; ``classes`` the explained class per
    sample (None for a callable target or a target-free method).
    """

    heatmap: torch.Tensor
    stats: dict[str, list[float]] = field(default_factory=dict)
    logits: torch.Tensor | None = None
    classes: list[int] | None = None


class Explainer(ABC):
    """Base class of every method: ``explainer(x, target) -> Tensor`` shaped like ``x``.

    Construction validates and converts the parameters (strings from the wire are accepted).
    Calling never leaves hooks or modifications on ``model``, also when it raises.
    """

    spec: ClassVar[MethodSpec]

    def __init__(self, model: nn.Module, **params: Any) -> None:
        self.model = model
        self.params = convert_params(self.spec.name, self.spec.params, params)
        self.setup()

    def setup(self) -> None:  # noqa: B027  (optional hook, not abstract)
        """Check parameters that need the model (layer names...); called at the end of ``__init__``."""

    def __call__(self, x: torch.Tensor, target: Target = "predicted") -> torch.Tensor:
        return self.attribute(x, target).heatmap

    @abstractmethod
    def attribute(self, x: torch.Tensor, target: Target = "predicted") -> Attribution:
        """The heatmap and per-sample statistics for batch ``x``."""


E = TypeVar("E", bound=type[Explainer])

_METHODS: dict[str, type[Explainer]] = {}


def register_method(
    name: str,
    *,
    params: Mapping[str, ParamSpec],
    signed: bool,
    output: Literal["heatmap", "image"] = "heatmap",
) -> Callable[[E], E]:
    """Class decorator registering an :class:`Explainer` subclass under ``name``."""

    def decorator(cls: E) -> E:
        if name in _METHODS and _METHODS[name] is not cls:
            raise ValueError(f"method {name!r} is already registered")
        doc = (cls.__doc__ or "").strip()
        cls.spec = MethodSpec(name=name, params=dict(params), signed=signed, output=output, doc=doc)
        _METHODS[name] = cls
        return cls

    return decorator


def list_methods() -> dict[str, MethodSpec]:
    """Every registered method by name (sorted)."""
    return {name: _METHODS[name].spec for name in sorted(_METHODS)}


def method_class(name: str) -> type[Explainer]:
    """The Explainer class registered under ``name`` (UnknownMethodError otherwise)."""
    try:
        return _METHODS[name]
    except KeyError:
        raise UnknownMethodError(
            f"unknown method {name!r}; known methods: {', '.join(sorted(_METHODS))}"
        ) from None


def create_explainer(name: str, model: nn.Module, **params: Any) -> Explainer:
    """Build the method ``name`` for ``model`` with ``params`` (validated, strings accepted)."""
    return method_class(name)(model, **params)
