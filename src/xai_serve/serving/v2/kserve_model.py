"""One served model as a model of KServe's Python model server (the ``kserve`` package).

:class:`XaiKServeModel` adapts KServe's request and response types to the transport-neutral v2 codec
(:mod:`xai_serve.serving.v2.codec`) and the shared :class:`~xai_serve.serving.service.ExplainService`,
through a :class:`~xai_serve.serving.v2.batcher.Batcher` (requests that arrive together share one
forward pass). It checks the bearer token itself (KServe has no authentication of its own) and raises
:class:`V2Error`, which carries both the HTTP status and the gRPC code of a failure.

Outputs go out as binary data on gRPC (``raw_output_contents``, as Triton answers) and on REST when the
request asks for it (``binary_data_output`` / an output's ``binary_data``); FP16 values and PNG bytes
are always binary (JSON cannot carry them).
"""

from __future__ import annotations

import hmac
import logging
from collections.abc import Mapping
from typing import Any

import grpc
import numpy as np
import torch
from grpc_interceptor.exceptions import GrpcException
from kserve import InferOutput, InferRequest, InferResponse, Model
from xai_client import oip
from xai_client.oip import V2Tensor

from xai_serve.errors import InvalidInputError, XaiError
from xai_serve.serving.service import ExplainService
from xai_serve.serving.v2 import codec
from xai_serve.serving.v2.batcher import Batcher

log = logging.getLogger(__name__)


class V2Error(GrpcException):
    """A failed v2 request: gRPC status ``status_code`` with ``details``; REST ``http_status`` with
    ``{"error": details}`` (the model server's exception handler)."""

    def __init__(self, failure: codec.Failure) -> None:
        super().__init__(details=failure.message, status_code=getattr(grpc.StatusCode, failure.grpc_code))
        self.http_status = failure.http_status


class XaiKServeModel(Model):
    """An :class:`ExplainService` served by KServe (see the module doc)."""

    def __init__(
        self,
        name: str,
        service: ExplainService,
        *,
        token: str | None,
        default_methods: list[str] | None = None,
        max_batch_rows: int = 16,
        max_batch_delay_s: float = 0.0,
    ) -> None:
        super().__init__(name)
        self.service = service
        self.token = token
        self.default_methods = list(default_methods or [])
        threads = torch.get_num_threads()  # the service's policy, set in this thread: the worker's too
        self.batcher = Batcher(
            service.handle,
            max_rows=max_batch_rows,
            max_delay_s=max_batch_delay_s,
            on_start=lambda: torch.set_num_threads(threads),
        )
        self.load()  # the service is built: ready (KServe's start() refuses models that are not)

    def load(self) -> bool:
        self.ready = True
        return True

    def stop(self) -> None:
        self.batcher.close()

    # ---------------------------------------------------------------- metadata

    def get_input_types(self) -> list[dict]:
        return [{"name": oip.INPUT, "datatype": "FP32", "shape": [-1, *self.service.card.input_shape]}]

    def get_output_types(self) -> list[dict]:
        k = self.service.card.num_classes
        c, h, w = self.service.card.input_shape
        out = [
            {"name": oip.PROBABILITIES, "datatype": "FP32", "shape": [-1, k]},
            {"name": oip.LOGITS, "datatype": "FP32", "shape": [-1, k]},
            {"name": oip.PREDICTED_CLASS, "datatype": "INT64", "shape": [-1]},
        ]
        for m in sorted(self.service.methods):
            out.append({"name": oip.HEATMAP + m, "datatype": "FP32", "shape": [-1, c, h, w]})
        return out

    # ---------------------------------------------------------------- inference

    def check_token(self, headers: Mapping[str, str] | None) -> None:
        if self.token is None:
            return
        given = ""
        for key, value in (headers or {}).items():
            if key.lower() == "authorization" and isinstance(value, str):
                given = value.removeprefix("Bearer ").strip()
        if not given or not hmac.compare_digest(given.encode(), self.token.encode()):
            raise V2Error(codec.failure_of("UNAUTHENTICATED", "a valid bearer token is required"))

    async def predict(
        self, payload: InferRequest, headers: dict[str, str] | None = None, response_headers: Any = None
    ) -> InferResponse:
        self.check_token(headers)
        try:
            params = codec.plain_parameters(payload.parameters)
            inputs = [_tensor(i) for i in payload.inputs]
            rows = codec.decode(inputs, params, self.service.card, request_id=payload.id or "")
            top_k = codec.top_k_of(params)
        except XaiError as exc:
            raise V2Error(codec.failure_of_error(exc)) from None
        answers = await self.batcher.submit(rows)
        failure = codec.failed_row(answers)
        if failure is not None:
            raise V2Error(failure)
        outputs, rparams = codec.encode(answers, self.service.card, top_k=top_k)
        return self._response(payload, outputs, rparams)

    def _response(self, payload: InferRequest, outputs: list[V2Tensor], params: dict) -> InferResponse:
        wanted = {o.name: o for o in payload.request_outputs or []}
        binary_all = bool(payload.from_grpc or payload.use_binary_outputs)
        infer_outputs = []
        for t in outputs:
            if wanted and t.name not in wanted:
                continue
            o = InferOutput(t.name, t.shape, t.datatype, parameters=dict(t.parameters))
            asked = wanted[t.name].binary_data if t.name in wanted else None
            binary = binary_all if asked is None else bool(asked) or payload.from_grpc
            if t.datatype == "FP16" or t.name.startswith(oip.PNG):
                binary = True
            o.set_data_from_numpy(np.ascontiguousarray(t.data), binary_data=binary)
            infer_outputs.append(o)
        return InferResponse(
            response_id=payload.id or "",
            model_name=self.name,
            infer_outputs=infer_outputs,
            parameters=params,
            from_grpc=payload.from_grpc,
            use_binary_outputs=binary_all,
        )


def _tensor(i: Any) -> V2Tensor:
    """A KServe ``InferInput`` as a codec tensor (InvalidInputError when its data do not fit its shape)."""
    try:
        data = i.as_numpy()
    except Exception as exc:  # numpy's reshape / frombuffer errors, KServe's InvalidInput
        raise InvalidInputError(f"input {i.name!r}: {exc}") from None
    return V2Tensor(i.name, i.datatype, [int(s) for s in i.shape], data, dict(i.parameters or {}))
