"""What the service reports per batch and per explanation (the metrics port; TorchServe's
implementation is :class:`~xai_serve.serving.metrics.TorchServeObserver`), and the wire Status of a
failure."""

from __future__ import annotations

import logging
from typing import Any, Protocol

from xai_client.api.v1 import explain_pb2 as pb

from xai_serve.errors import XaiError

log = logging.getLogger(__name__)


class Observer(Protocol):
    """Receives what the metrics need (see ``metrics.py``)."""

    def explained(self, method: str, status: str, seconds: float, count: int) -> None: ...
    def batch(self, size: int) -> None: ...


class SafeObserver:
    """Wraps an observer so a failing metrics call never fails a request.

    The catch is deliberately broad: the observer is supplied by the caller (TorchServe's metrics
    objects in a worker), so whatever it raises is logged with its traceback and the request goes on."""

    def __init__(self, inner: Observer) -> None:
        self._inner = inner

    def explained(self, method: str, status: str, seconds: float, count: int) -> None:
        try:
            self._inner.explained(method, status, seconds, count)
        except Exception:
            log.warning("observer failed", exc_info=True)

    def batch(self, size: int) -> None:
        try:
            self._inner.batch(size)
        except Exception:
            log.warning("observer failed", exc_info=True)

    def cache(self, stats: Any) -> None:
        """The explanation cache's counters after a batch (to an observer that reports them)."""
        report = getattr(self._inner, "cache", None)
        if report is None:
            return
        try:
            report(stats)
        except Exception:
            log.warning("observer failed", exc_info=True)


class NullObserver:
    def explained(self, method: str, status: str, seconds: float, count: int) -> None:
        pass

    def batch(self, size: int) -> None:
        pass


def status_of(exc: BaseException) -> pb.Status:
    """The wire Status of an exception: XaiError keeps its code; anything else (a bug) is INTERNAL."""
    if isinstance(exc, XaiError):
        code = exc.code if exc.code in pb.Code.keys() else "INTERNAL"  # noqa: SIM118 (enum wrapper)
        return pb.Status(code=pb.Code.Value(code), message=str(exc), reason=type(exc).__name__)
    return pb.Status(
        code=pb.INTERNAL, message=f"internal error: {type(exc).__name__}: {exc}", reason=type(exc).__name__
    )


def status_label(exc: BaseException) -> str:
    """The metrics label of a failure: its wire code in lower case (``internal`` for a bug)."""
    return (exc.code if isinstance(exc, XaiError) else "INTERNAL").lower()
