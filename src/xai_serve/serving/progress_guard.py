"""The service's progress callback: stops an iterative explanation (class_image, filter_image,
integrated_gradients, smoothgrad, occlusion) within one iteration or chunk once the client deadline of a
request it serves has passed (``DEADLINE_EXCEEDED``), so a timed-out request frees the worker instead of
running to the end; optionally forwards each event (a streamed answer's progress messages)."""

from __future__ import annotations

from collections.abc import Callable, Sequence

from xai_serve.explain.progress import ProgressEvent
from xai_serve.serving.limits import check_deadline


def deadline_guard(
    deadlines: Sequence[float], forward: Callable[[ProgressEvent], None] | None = None
) -> Callable[[ProgressEvent], None]:
    """A progress callback raising DeadlineExceededError once any of ``deadlines`` (Unix seconds; 0 =
    none) has passed, and passing every event to ``forward`` otherwise."""
    live = [d for d in deadlines if d and d > 0]

    def guard(event: ProgressEvent) -> None:
        for deadline in live:
            check_deadline(deadline)
        if forward is not None:
            forward(event)

    return guard
