"""One batch in flight through :class:`~xai_serve.serving.service.ExplainService`.

A :class:`ServedBatch` holds, per position ``i`` of the batch, the wire request, its decoded input, its
prediction logits, its error (the first one wins the answer) and its response; a :class:`Row` is one
(request, target) pair to explain; requests asking for the same methods with the same parameters
(the same :data:`MethodKey`) are explained together.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import torch
from xai_client.api.v1 import explain_pb2 as pb

from xai_serve.explain import Attribution, Component
from xai_serve.serving.inputs import DecodedInput
from xai_serve.serving.observer import status_of
from xai_serve.serving.ports import MethodParams

# the methods of a request with their parameters, sorted: requests with equal keys share engine calls
MethodKey = tuple[tuple[str, tuple[tuple[str, str], ...]], ...]


def method_key(req: pb.ExplainRequest) -> MethodKey:
    return tuple((m.name, tuple(sorted(m.params.items()))) for m in req.methods)


def method_names(key: MethodKey) -> list[str]:
    return [name for name, _ in key]


def method_params(key: MethodKey) -> MethodParams:
    return {name: dict(params) for name, params in key}


@dataclass(frozen=True)
class Row:
    """One (request, target class or component) pair to explain."""

    request: int
    target: int | Component


@dataclass
class ServedBatch:
    """The state of one batch, by position in the batch (see the module doc)."""

    responses: list[pb.ExplainResponse]
    requests: dict[int, pb.ExplainRequest] = field(default_factory=dict)
    decoded: dict[int, DecodedInput] = field(default_factory=dict)
    logits: dict[int, torch.Tensor] = field(default_factory=dict)
    errors: dict[int, BaseException] = field(default_factory=dict)
    counted: set[int] = field(default_factory=set)  # requests already reported to the observer
    # the explanation cache: each request's key per method, and the requests answered from it
    cache_keys: dict[int, dict[str, str | None]] = field(default_factory=dict)
    cached: dict[int, dict[str, list[tuple[int | Component, Attribution]]]] = field(default_factory=dict)

    @classmethod
    def of(cls, model: str, size: int) -> ServedBatch:
        return cls([pb.ExplainResponse(model=model) for _ in range(size)])

    def decoded_requests(self) -> list[int]:
        """The requests whose input decoded, in batch order."""
        return sorted(self.decoded)

    def inputs(self, requests: Sequence[int]) -> torch.Tensor:
        """The model inputs of ``requests`` (repeats allowed) stacked into one batch tensor."""
        return torch.stack([self.decoded[i].x for i in requests])

    def answers(self, total_ms: float) -> list[pb.ExplainResponse]:
        """Every response with its final status (a failed request keeps no heatmap nor prediction)."""
        for i, resp in enumerate(self.responses):
            if i in self.errors:
                _fail(resp, self.errors[i])
            else:
                resp.status.code = pb.OK
            resp.timings.total_ms = total_ms
            resp.timings.batch_size = len(self.responses)
        return self.responses

    def fail_all(self, exc: BaseException) -> list[pb.ExplainResponse]:
        """Every response answered with ``exc``."""
        for resp in self.responses:
            _fail(resp, exc)
        return self.responses


def _fail(resp: pb.ExplainResponse, exc: BaseException) -> None:
    resp.ClearField("heatmaps")
    resp.ClearField("prediction")
    resp.status.CopyFrom(status_of(exc))
