"""The streamed answer's wire form: the worker's progress and final messages read back by the client
(progress items, then the Explanation; a failed final Status raises its typed error)."""

from __future__ import annotations

import pytest
import torch
from xai_client import DeadlineExceeded, Explanation
from xai_client.api.v1 import explain_pb2 as pb
from xai_client.streaming import Progress, progress_bar, read_stream

from xai_serve.explain.progress import ProgressEvent
from xai_serve.serving.streaming import final_message, progress_message


def test_progress_then_answer_round_trip() -> None:
    image = torch.rand(1, 1, 4, 4)
    events = [ProgressEvent("class_image", 1, 4, 0.5, image), ProgressEvent("class_image", 4, 4, 2.0, image)]
    answer = pb.ExplainResponse(model="m")
    answer.status.code = pb.OK
    items = list(read_stream(iter([*(progress_message(e) for e in events), final_message(answer)])))
    assert [type(i) for i in items] == [Progress, Progress, Explanation]
    first = items[0]
    assert isinstance(first, Progress)
    assert (first.done, first.total, first.fraction) == (1, 4, 0.25) and first.eta_s == pytest.approx(1.5)
    assert first.image is not None and first.image.shape == (1, 4, 4)
    assert "25.0%" in progress_bar(first)


def test_a_failed_answer_raises_its_typed_error() -> None:
    answer = pb.ExplainResponse()
    answer.status.code = pb.DEADLINE_EXCEEDED
    answer.status.message = "too late"
    with pytest.raises(DeadlineExceeded, match="too late"):
        list(read_stream(iter([final_message(answer)])))
