"""Make a model explainable by hooks: every ReLU its own, non-in-place module.

Hook-based methods (guided backprop, LRP, Captum/zennit style) need each activation to be a module
called once per forward pass and never to overwrite its input (docs/methods.md#canonicalisation).
``canonicalise``:

1. turns off ``inplace`` on every module that has the flag (ReLU, ReLU6, LeakyReLU, Dropout, ...);
2. swaps torchvision's ``BasicBlock`` / ``Bottleneck`` (which call one ``self.relu`` two or three times
   and use ``out += identity``) for subclasses with one ReLU module per use (``relu``, ``relu2``,
   ``relu3``) and the addition as a :class:`~xai_serve.models.layers.Sum` module named ``add``;
3. replaces a parameter-free module registered under several names by independent copies.

Parameters and buffers are untouched (same ``state_dict`` keys and values) and outputs stay
bit-identical. It works in place, returns the model and is idempotent. It is reversible: the changes
are recorded (:class:`Changes`), which the explanation engine uses to canonicalise a model that was not
canonicalised at load time for the duration of one call (:mod:`xai_serve.explain.canonizers`).
"""

from __future__ import annotations

import copy
import sys
import weakref
from collections.abc import Callable
from typing import Any

from torch import nn

from xai_serve.models.layers import Sum


def torchvision_blocks() -> tuple[type[nn.Module], type[nn.Module]] | None:
    """torchvision's ``(BasicBlock, Bottleneck)``, or None when torchvision is not imported: then no
    model can hold one, and a worker serving a model without them never pays torchvision's import."""
    resnet = sys.modules.get("torchvision.models.resnet")
    if resnet is None:
        return None
    return resnet.BasicBlock, resnet.Bottleneck


class Changes:
    """The record of a canonicalisation: :meth:`remove` undoes it (newest first). Load time keeps the
    changes; the explanation engine removes them after each call (through its ``ModelPatch``)."""

    def __init__(self) -> None:
        self._undo: list[Callable[[], None]] = []

    def set(self, obj: Any, name: str, value: Any) -> None:
        """``setattr(obj, name, value)`` (a flag, a child module, ``__class__``), undone by :meth:`remove`."""
        modules = obj.__dict__.get("_modules", {}) if isinstance(obj, nn.Module) else {}
        if name in modules:
            previous = modules[name]
            self._undo.append(lambda: modules.__setitem__(name, previous))
        elif isinstance(value, nn.Module) and isinstance(obj, nn.Module):
            self._undo.append(lambda: modules.pop(name, None))
        else:
            previous = getattr(obj, name)
            self._undo.append(lambda: setattr(obj, name, previous))
        setattr(obj, name, value)

    def remove(self) -> None:
        while self._undo:
            self._undo.pop()()


# the modules a block gets, kept per block so a block canonicalised again (every explanation of a
# torchvision model) gets the same module objects (the engine caches its graph analysis by them)
_ADDED: weakref.WeakKeyDictionary[nn.Module, dict[str, nn.Module]] = weakref.WeakKeyDictionary()


def _swap_block(module: nn.Module, changes: Changes) -> None:
    blocks = torchvision_blocks()
    kind = type(module)
    if blocks is None or kind not in blocks:
        return
    from xai_serve.models.canonical_blocks import CanonicalBasicBlock, CanonicalBottleneck

    basic = kind is blocks[0]
    names = ("relu2", "add") if basic else ("relu2", "relu3", "add")
    added = _ADDED.setdefault(module, {})
    changes.set(module, "__class__", CanonicalBasicBlock if basic else CanonicalBottleneck)
    for name in names:
        if name not in added:
            added[name] = Sum() if name == "add" else nn.ReLU()
        changes.set(module, name, added[name])


def _split_shared_modules(model: nn.Module, changes: Changes) -> None:
    seen: set[int] = set()
    for name, module in list(model.named_modules(remove_duplicate=False)):
        if not name:
            continue
        if (
            id(module) in seen
            and not any(True for _ in module.parameters())
            and not any(True for _ in module.buffers())
        ):
            parent_name, _, child = name.rpartition(".")
            parent = model.get_submodule(parent_name) if parent_name else model
            changes.set(parent, child, copy.deepcopy(module))
        seen.add(id(module))


def canonicalise(model: nn.Module, changes: Changes | None = None) -> nn.Module:
    """Rewrite ``model`` in place so every ReLU is a distinct, non-in-place module; returns ``model``.

    The rewrite is recorded in ``changes`` (``changes.remove()`` undoes it); without one it is kept
    (load time)."""
    changes = changes if changes is not None else Changes()
    for module in model.modules():
        if isinstance(getattr(module, "inplace", None), bool) and module.inplace:
            changes.set(module, "inplace", False)
    for module in list(model.modules()):
        _swap_block(module, changes)
    _split_shared_modules(model, changes)
    return model
