"""Progress of long explanations: iterative methods (``class_image``, ``filter_image``,
``integrated_gradients``, ``smoothgrad``, ``occlusion``) report each finished iteration or chunk to the
callback of the enclosing :func:`reporting` scope, if any (a context variable: no parameter to thread
through the engine, nothing reported outside a scope).

The callback receives a :class:`ProgressEvent` (method, done, total, fraction, elapsed and estimated
remaining seconds, and for ``class_image`` the current image). It may raise to stop the method: a server
stops a request whose deadline passed, or that its client cancelled, within one iteration or chunk.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Iterator
from contextvars import ContextVar
from dataclasses import dataclass

import torch


@dataclass(frozen=True)
class ProgressEvent:
    method: str
    done: int
    total: int
    elapsed_s: float
    image: torch.Tensor | None = None  # class_image: the images after this step (pixels in [0, 1])

    @property
    def fraction(self) -> float:
        return self.done / self.total if self.total else 1.0

    @property
    def eta_s(self) -> float:
        """Estimated seconds left (elapsed time per unit of work so far)."""
        return self.elapsed_s / self.done * (self.total - self.done) if self.done else float("nan")


ProgressCallback = Callable[[ProgressEvent], None]

_SCOPE: ContextVar[tuple[ProgressCallback, dict[str, float]] | None] = ContextVar(
    "xai_progress", default=None
)


@contextlib.contextmanager
def reporting(callback: ProgressCallback) -> Iterator[None]:
    """Report the progress of the methods run inside to ``callback``."""
    token = _SCOPE.set((callback, {}))
    try:
        yield
    finally:
        _SCOPE.reset(token)


def report(method: str, done: int, total: int, image: torch.Tensor | None = None) -> None:
    """Called by a method after each iteration or chunk (nothing happens outside a scope)."""
    scope = _SCOPE.get()
    if scope is None:
        return
    callback, started = scope
    now = time.perf_counter()
    start = started.setdefault(method, now)
    if done >= total:
        started.pop(method, None)  # the next call of the method times itself afresh
    callback(ProgressEvent(method, done, total, now - start, image))
