"""Streamed answers over gRPC (TorchServe's ``StreamPredictions``): a request with
``ExplainRequest.stream`` receives :class:`ExplainProgress` messages while its iterative methods run, then
its final answer, each wrapped in an ``ExplainStreamMessage``.

Progress goes out with TorchServe's ``send_intermediate_predict_response`` (the frontend forwards each as
one ``PredictionResponse`` of the stream), at most every ``min_interval_s`` per request, and always the
last step. The final answer carries the response header ``ts_stream_next: false``: without it
TorchServe 0.12's frontend fails the stream (``GRPCJob`` reads the header; a NullPointerException kills
the worker). A request that times out is stopped within one iteration by the service's deadline guard.
"""

from __future__ import annotations

import logging
import time
from typing import Any

from xai_client.api.v1 import explain_pb2 as pb
from xai_client.tensors import to_proto

from xai_serve.explain.progress import ProgressEvent

log = logging.getLogger(__name__)

STREAM_NEXT = "ts_stream_next"


def progress_message(event: ProgressEvent) -> bytes:
    """The wire form of one progress event (class_image: with the first row's current image)."""
    eta = event.eta_s
    msg = pb.ExplainStreamMessage(
        progress=pb.ExplainProgress(
            method=event.method,
            done=event.done,
            total=event.total,
            fraction=event.fraction,
            eta_s=eta if eta == eta else 0.0,  # NaN before the first step: unknown, sent as 0
        )
    )
    if event.image is not None:
        to_proto(event.image[0].detach().float().cpu().numpy(), msg.progress.image)
    return msg.SerializeToString()


def final_message(resp: pb.ExplainResponse) -> bytes:
    return pb.ExplainStreamMessage(response=resp).SerializeToString()


class StreamSender:
    """The service's progress callback in a TorchServe worker: sends the events of the streamed requests
    (``streamed``: positions in the batch) as intermediate responses."""

    def __init__(self, context: Any, streamed: set[int], min_interval_s: float = 0.2) -> None:
        self.context = context
        self.streamed = streamed
        self.min_interval_s = min_interval_s
        self._last: dict[int, float] = {}

    def __call__(self, i: int, event: ProgressEvent) -> None:
        if i not in self.streamed:
            return
        now = time.monotonic()
        if event.done < event.total and now - self._last.get(i, -1e9) < self.min_interval_s:
            return
        self._last[i] = now
        try:
            from ts.protocol.otf_message_handler import send_intermediate_predict_response

            send_intermediate_predict_response(
                {i: progress_message(event)},
                {i: self.context.request_ids[i]},
                "Intermediate Prediction success",
                200,
                self.context,
            )
        except Exception:  # progress must never fail the explanation
            log.warning("could not send a progress message", exc_info=True)
