"""A cache of parameters derived from a model's weights, owned by whoever holds the model.

LRP (:mod:`xai_serve.explain.lrp_engine`) derives weights per layer and rule setting (BatchNorm merged
into the linear layer, ``W+``, ``W^2``...); deriving them costs about as much as a forward pass, so they
are kept per model until a parameter changes. Every distinct ``gamma`` a client sends derives one set
per layer, so the cache is bounded: at most ``entries`` (layer, rule-setting) pairs per model, least
recently used evicted first. The caller owns the cache (a serving worker builds one per served model
and passes it in its :class:`~xai_serve.explain.context.ModelContext`); calls that pass no context share
the cache of :data:`~xai_serve.explain.context.DEFAULT_CONTEXT`.
"""

from __future__ import annotations

import weakref
from collections import OrderedDict
from collections.abc import Callable, Hashable
from typing import TYPE_CHECKING, Any, TypeVar

if TYPE_CHECKING:
    from torch import nn

T = TypeVar("T")

DEFAULT_ENTRIES = 1024


class DerivedParamCache:
    """Per model (held weakly): key -> (version, derived value), LRU-bounded to ``entries`` per model."""

    def __init__(self, entries: int = DEFAULT_ENTRIES) -> None:
        if entries < 1:
            raise ValueError(f"the derived-parameter cache needs at least one entry, not {entries}")
        self.entries = int(entries)
        self._models: weakref.WeakKeyDictionary[nn.Module, OrderedDict[Hashable, tuple[Any, Any]]] = (
            weakref.WeakKeyDictionary()
        )

    def get(self, model: nn.Module, key: Hashable, version: Any, derive: Callable[[], T]) -> T:
        """The value cached for ``(model, key)`` if it was derived at ``version`` (the state of its source
        tensors), else ``derive()``, cached."""
        cache = self._models.setdefault(model, OrderedDict())
        hit = cache.get(key)
        if hit is not None and hit[0] == version:
            cache.move_to_end(key)
            return hit[1]
        value = derive()
        cache[key] = (version, value)
        cache.move_to_end(key)
        while len(cache) > self.entries:
            cache.popitem(last=False)
        return value

    def size(self, model: nn.Module) -> int:
        """Entries cached for ``model``."""
        return len(self._models.get(model) or ())
