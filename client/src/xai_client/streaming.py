"""Streamed explanations over gRPC: progress messages of a long explanation (iterative methods:
``class_image``, ``filter_image``, ``integrated_gradients``, ``smoothgrad``, ``occlusion``), then the
answer. ``Client.explain_stream(...)`` iterates :class:`Progress` items and ends with the
:class:`~xai_client.results.Explanation`; breaking out of the loop cancels the call, and the client's
timeout is the request's deadline (the worker stops the explanation within one iteration once it
passes)."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np

from xai_client.api.v1 import explain_pb2 as pb
from xai_client.errors import Internal, error_for_code
from xai_client.results import Explanation, explanation_from_proto
from xai_client.tensors import from_proto


@dataclass(frozen=True)
class Progress:
    """How far one method is: ``done`` of ``total`` units (iterations, path points, noisy copies,
    windows), ``eta_s`` seconds left (estimate), and for ``class_image`` the current image."""

    method: str
    done: int
    total: int
    fraction: float
    eta_s: float
    image: np.ndarray | None = None


def progress_from_proto(msg: pb.ExplainProgress) -> Progress:
    return Progress(
        method=msg.method,
        done=msg.done,
        total=msg.total,
        fraction=msg.fraction,
        eta_s=msg.eta_s,
        image=from_proto(msg.image) if msg.HasField("image") else None,
    )


def read_stream(messages: Iterator[bytes]) -> Iterator[Progress | Explanation]:
    """Progress items, then the Explanation (a non-OK final Status raises its typed error)."""
    for raw in messages:
        msg = pb.ExplainStreamMessage()
        try:
            msg.ParseFromString(raw)
        except Exception as exc:
            raise Internal(
                f"the server sent something that is not a stream message ({len(raw)} bytes)"
            ) from exc
        kind = msg.WhichOneof("kind")
        if kind == "progress":
            yield progress_from_proto(msg.progress)
            continue
        if kind != "response":
            raise Internal("the server sent an empty stream message")
        resp = msg.response
        if resp.status.code != pb.OK:
            raise error_for_code(
                pb.Code.Name(resp.status.code), resp.status.message, reason=resp.status.reason
            )
        yield explanation_from_proto(resp)
        return
    raise Internal("the stream ended without an answer")


def progress_bar(item: Progress, width: int = 30) -> str:
    """One line of a text progress bar (both CLIs)."""
    filled = round(item.fraction * width)
    bar = "#" * filled + "." * (width - filled)
    return f"{item.method} [{bar}] {100 * item.fraction:5.1f}% ETA {item.eta_s:5.1f} s"
