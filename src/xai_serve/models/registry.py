"""The model registry: one name -> one factory building an ``nn.Module``.

Factories register themselves with :func:`register_model`; the CLI, recipes, checkpoints and the
serving layer only ever refer to models by their registry name.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

from torch import nn

from xai_serve.errors import InvalidParameterError, UnknownModelError

ModelFactory = Callable[..., nn.Module]
F = TypeVar("F", bound=ModelFactory)

_MODELS: dict[str, ModelFactory] = {}
#: name prefixes resolved on demand, e.g. ``torchvision.`` (models/torchvision_zoo.py): prefix -> a
#: function giving the factory of the rest of the name, or None when it names nothing
_FAMILIES: dict[str, Callable[[str], ModelFactory | None]] = {}


def register_model_family(prefix: str, resolve: Callable[[str], ModelFactory | None]) -> None:
    """Names ``PREFIX + rest`` build with ``resolve(rest)`` (not listed by :func:`list_models`)."""
    _FAMILIES[prefix] = resolve


def _factory(name: str) -> ModelFactory:
    if name in _MODELS:
        return _MODELS[name]
    for prefix, resolve in _FAMILIES.items():
        if name.startswith(prefix):
            found = resolve(name[len(prefix) :])
            if found is not None:
                return found
    raise UnknownModelError(f"unknown model {name!r}; known models: {', '.join(list_models())}")


def register_model(name: str) -> Callable[[F], F]:
    """Decorator registering ``factory(**kwargs) -> nn.Module`` under ``name``."""

    def decorator(factory: F) -> F:
        if name in _MODELS and _MODELS[name] is not factory:
            raise ValueError(f"model name {name!r} is already registered")
        _MODELS[name] = factory
        return factory

    return decorator


def list_models() -> list[str]:
    """Names accepted by :func:`create_model`, sorted."""
    return sorted(_MODELS)


def model_parameters(name: str) -> list[str]:
    """Keyword names the factory of ``name`` accepts (the trainer fills in num_classes / in_chans)."""
    import inspect

    return list(inspect.signature(_factory(name)).parameters)


def create_model(name: str, **kwargs: Any) -> nn.Module:
    """Build the registered model ``name`` with ``kwargs`` (random init unless a weights path is given).

    Raises :class:`UnknownModelError` for an unknown name and :class:`InvalidParameterError` for a
    keyword the factory does not accept.
    """
    factory = _factory(name)
    try:
        return factory(**kwargs)
    except TypeError as exc:
        raise InvalidParameterError(f"bad arguments for model {name!r}: {exc}") from exc
