"""The method registry: one name -> one :class:`Explainer` subclass with its declared parameters.

``list_methods()`` drives the CLI choices, the served describe call, the docs and the test sweep: adding
a method is one module in the ``xai_serve.explain`` package with one ``@register_method`` class, nothing
else (every module of the package is imported on the first registry look-up, so there is no hand-kept
import list).
"""

from __future__ import annotations

import importlib
import pkgutil
from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar, Literal, TypeVar

import torch
from torch import nn

from xai_serve.errors import UnknownMethodError
from xai_serve.explain.context import DEFAULT_CONTEXT, ModelContext
from xai_serve.explain.params import ParamSpec, convert_params
from xai_serve.explain.targets import Target


@dataclass(frozen=True)
class MethodSpec:
    """What a client needs to know about a method.

    ``signed``: the map has a meaningful sign (render with a diverging colour map). ``output``:
    ``"heatmap"`` (relevance shaped like the input) or ``"image"`` (an input-space image, class_image).
    ``test_params``: cheap parameters for tests (e.g. 3 iterations); ``demo_params``: parameters for a
    demo that still shows something (default: ``test_params``). Cost, for the
    server's limits: ``passes`` forward+backward passes per explained row, times the value of the
    parameter named ``iterations`` when the method iterates (checked against the iteration limit).
    ``targeted``: the map depends on the target (False: e.g. a filter's map, the target is ignored).
    ``cost``: where the work depends on the input size (occlusion's windows), ``cost(params,
    input_shape)`` gives the passes per row instead of ``passes``. ``seed``: the parameter seeding the
    method's randomness (a call with it unset is not reproducible: a server never caches it).
    """

    name: str
    params: Mapping[str, ParamSpec]
    signed: bool
    output: Literal["heatmap", "image"]
    doc: str
    test_params: Mapping[str, Any] = field(default_factory=dict)
    demo_params: Mapping[str, Any] = field(default_factory=dict)
    iterations: str | None = None
    passes: float = 1.0
    targeted: bool = True
    cost: Callable[[dict[str, Any], tuple[int, ...] | None], float] | None = None
    seed: str | None = None

    def converted(self, params: Mapping[str, Any]) -> dict[str, Any]:
        """``params`` (wire text or values, possibly partial) converted, defaults filled in."""
        return convert_params(self.name, self.params, params)

    def iteration_count(self, params: Mapping[str, Any]) -> int:
        """Iterations a call with ``params`` (converted or wire text) runs; 1 for a one-shot method."""
        if self.iterations is None:
            return 1
        value = params.get(self.iterations, self.params[self.iterations].default)
        return int(self.params[self.iterations].convert(self.iterations, value))

    def work(self, params: Mapping[str, Any], input_shape: tuple[int, ...] | None = None) -> float:
        """Estimated forward+backward passes per explained row (of an input of ``input_shape``)."""
        if self.cost is not None:
            return self.cost(self.converted(params), input_shape)
        return self.passes * self.iteration_count(params)

    def describe(self) -> dict[str, Any]:
        """JSON-ready description: what the served describe call and ``Client.methods`` return."""
        return {
            "signed": self.signed,
            "output": self.output,
            "doc": self.doc,
            "params": {name: spec.describe() for name, spec in self.params.items()},
            "test_params": dict(self.test_params),
            "demo_params": dict(self.demo_params),
            "iterations": self.iterations,
            "passes": self.passes,
            "targeted": self.targeted,
        }


@dataclass
class Attribution:
    """One method's result for a batch.

    ``heatmap`` is shaped like the input (B, C, H, W). ``stats`` holds per-sample figures (each list has
    B entries; LRP: ``relevance_sum``, ``target_score``, ``conservation``, ``bias_absorbed``).
    ``logits`` are the model outputs (B, K) of the forward pass the method used (shared between
    methods by :func:`~xai_serve.explain.explain_detailed`), detached; ``classes`` the explained class per
    sample (None for a callable target or a target-free method); ``layer`` the module name a layer
    method used.
    """

    heatmap: torch.Tensor
    stats: dict[str, list[float]] = field(default_factory=dict)
    logits: torch.Tensor | None = None
    classes: list[int] | None = None
    layer: str | None = None  # the module a layer method used (Grad-CAM's default layer...)


class Explainer(ABC):
    """Base class of every method: ``explainer(x, target) -> Tensor`` shaped like ``x``.

    Construction validates and converts the parameters (strings from the wire are accepted).
    ``context`` is the model's input normalisation (:class:`ModelContext`; default: pixels in [0, 1]).
    Calling never leaves hooks or modifications on ``model``, also when it raises.
    """

    spec: ClassVar[MethodSpec]
    # whether ``attribute`` runs the model's own forward pass once on the batch and reports its logits
    # and explained classes (a server can take the prediction from that pass instead of a second one)
    prediction_pass: ClassVar[bool] = False

    def __init__(self, model: nn.Module, *, context: ModelContext | None = None, **params: Any) -> None:
        self.model = model
        self.context = context or DEFAULT_CONTEXT
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
    test_params: Mapping[str, Any] | None = None,
    demo_params: Mapping[str, Any] | None = None,
    iterations: str | None = None,
    passes: float = 1.0,
    targeted: bool = True,
    cost: Callable[[dict[str, Any], tuple[int, ...] | None], float] | None = None,
    seed: str | None = None,
) -> Callable[[E], E]:
    """Class decorator registering an :class:`Explainer` subclass under ``name`` (see :class:`MethodSpec`)."""
    for role, param in (("iterations", iterations), ("seed", seed)):
        if param is not None and param not in params:
            raise ValueError(f"method {name!r}: {role}={param!r} is not one of its parameters")

    def decorator(cls: E) -> E:
        if name in _METHODS and _METHODS[name] is not cls:
            raise ValueError(f"method {name!r} is already registered")
        doc = (cls.__doc__ or "").strip()
        cls.spec = MethodSpec(
            name=name,
            params=dict(params),
            signed=signed,
            output=output,
            doc=doc,
            test_params=dict(test_params or {}),
            demo_params=dict(demo_params if demo_params is not None else test_params or {}),
            iterations=iterations,
            passes=passes,
            targeted=targeted,
            cost=cost,
            seed=seed,
        )
        _METHODS[name] = cls
        return cls

    return decorator


_DISCOVERED = False


def discover() -> None:
    """Import every module of the ``xai_serve.explain`` package once (each registers its methods)."""
    global _DISCOVERED
    if _DISCOVERED:
        return
    package = importlib.import_module("xai_serve.explain")
    for info in pkgutil.iter_modules(package.__path__):
        importlib.import_module(f"{package.__name__}.{info.name}")
    _DISCOVERED = True


def list_methods() -> dict[str, MethodSpec]:
    """Every registered method by name (sorted)."""
    discover()
    return {name: _METHODS[name].spec for name in sorted(_METHODS)}


def method_class(name: str) -> type[Explainer]:
    """The Explainer class registered under ``name`` (UnknownMethodError otherwise)."""
    discover()
    try:
        return _METHODS[name]
    except KeyError:
        raise UnknownMethodError(
            f"unknown method {name!r}; known methods: {', '.join(sorted(_METHODS))}"
        ) from None


def create_explainer(
    name: str, model: nn.Module, *, context: ModelContext | None = None, **params: Any
) -> Explainer:
    """Build the method ``name`` for ``model`` with ``params`` (validated, strings accepted)."""
    return method_class(name)(model, context=context, **params)
