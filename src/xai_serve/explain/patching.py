"""The hook engine: every change an explanation makes to a model, undone on exit, also on error.

:class:`ModelPatch` is a context manager that records each change (a forward hook, a replaced
``forward``, a flipped attribute) together with how to undo it; leaving the ``with`` block undoes them
in reverse order whatever happened inside. A serving worker lives for days: after every call the model
has no hooks left, no replaced ``forward`` and its outputs are bit-identical.

:func:`gradient_context` makes gradients available whatever the caller's mode (the engine enables
autograd itself, also under a caller's ``torch.no_grad`` or ``torch.inference_mode``), and
:func:`prepare_input` returns a leaf copy of the input that requires grad (inference tensors are cloned
into normal tensors). Models may be frozen (``requires_grad=False`` parameters): no method relies on
parameter gradients.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from types import TracebackType
from typing import Any

import torch
from torch import nn

from xai_serve.errors import InvalidInputError

_MISSING = object()


class ModelPatch:
    """Reversible, recorded changes to a model (hooks, replaced forwards, attributes)."""

    def __init__(self) -> None:
        self._undo: list[Callable[[], None]] = []

    def __enter__(self) -> ModelPatch:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.restore()

    def restore(self) -> None:
        """Undo every recorded change, newest first; raise the first failure after trying them all."""
        first: BaseException | None = None
        while self._undo:
            undo = self._undo.pop()
            try:
                undo()
            except BaseException as exc:  # keep undoing the rest, then report
                first = first or exc
        if first is not None:
            raise first

    def set_attr(self, obj: Any, name: str, value: Any) -> None:
        """``setattr(obj, name, value)``, restoring the previous instance attribute (or its absence)."""
        previous = obj.__dict__.get(name, _MISSING)

        def undo() -> None:
            if previous is _MISSING:
                obj.__dict__.pop(name, None)
            else:
                obj.__dict__[name] = previous

        self._undo.append(undo)
        obj.__dict__[name] = value

    def set_module_flag(self, module: nn.Module, name: str, value: Any) -> None:
        """Set an ordinary module attribute (e.g. ``inplace``) and restore its old value."""
        previous = getattr(module, name)
        self._undo.append(lambda: setattr(module, name, previous))
        setattr(module, name, value)

    def replace_forward(self, module: nn.Module, forward: Callable[..., Any]) -> None:
        """Make ``module(...)`` call ``forward`` (module hooks still run) until restored."""
        self.set_attr(module, "forward", forward)

    def forward_hook(self, module: nn.Module, hook: Callable[..., Any]) -> None:
        """``module.register_forward_hook(hook)``, removed on exit."""
        self._undo.append(module.register_forward_hook(hook).remove)

    def forward_pre_hook(self, module: nn.Module, hook: Callable[..., Any]) -> None:
        """``module.register_forward_pre_hook(hook)``, removed on exit."""
        self._undo.append(module.register_forward_pre_hook(hook).remove)

    def on_exit(self, undo: Callable[[], None]) -> None:
        """Run ``undo`` on exit (with the other undos, newest first)."""
        self._undo.append(undo)


@contextlib.contextmanager
def gradient_context() -> Iterator[None]:
    """Autograd on, inference mode off, for the duration (whatever the caller's mode)."""
    with torch.inference_mode(False), torch.enable_grad():
        yield


def prepare_input(x: Any) -> torch.Tensor:
    """A leaf copy of ``x`` that requires grad; validates that ``x`` is a finite float batch.

    Call inside :func:`gradient_context`.
    """
    if not isinstance(x, torch.Tensor):
        raise InvalidInputError(f"expected a torch.Tensor input, got {type(x).__name__}")
    if not x.dtype.is_floating_point:
        raise InvalidInputError(f"expected a floating-point input, got {x.dtype}")
    if x.ndim < 2 or x.shape[0] == 0:
        raise InvalidInputError(f"expected a non-empty batch (B, ...), got shape {tuple(x.shape)}")
    if not bool(torch.isfinite(x).all()):
        raise InvalidInputError("the input contains NaN or infinite values")
    out = x.detach().clone() if x.is_inference() else x.detach()
    return out.requires_grad_(True)


def model_hooks(model: nn.Module) -> list[str]:
    """Names of modules that carry any hook or a replaced ``forward`` (empty for a clean model)."""
    dirty = []
    for name, module in model.named_modules():
        hook_dicts = (
            module._forward_hooks,
            module._forward_pre_hooks,
            module._backward_hooks,
            module._backward_pre_hooks,
        )
        if any(len(d) for d in hook_dicts) or "forward" in module.__dict__:
            dirty.append(name or "<root>")
    return dirty
