"""The Open Inference Protocol (v2) codec: a v2 request decoded into ExplainRequests, answered by the
service, encoded as v2 outputs and read back by the client's half equals the service's own answers;
bad requests raise the typed errors that map to the protocol's statuses."""

from __future__ import annotations

import numpy as np
import pytest
from xai_client import oip
from xai_client.oip import V2Tensor
from xai_client.requests import build_request

from xai_serve.errors import InvalidInputError, InvalidParameterError, InvalidTargetError
from xai_serve.serving.service import ExplainService
from xai_serve.serving.v2 import codec


@pytest.fixture(scope="module")
def service(model, card) -> ExplainService:
    return ExplainService("tiny", model, card)


def _pixels(seed: int, n: int = 2) -> np.ndarray:
    return np.random.default_rng(seed).random((n, 1, 28, 28)).astype(np.float32)


def _answer(service, inputs, params):
    rows = codec.decode(inputs, params, service.card, request_id="r1")
    responses = service.handle(rows)
    assert codec.failed_row(responses) is None
    return codec.encode(responses, service.card, top_k=codec.top_k_of(params))


def test_round_trip_equals_service(service) -> None:
    x = _pixels(0)
    params = {oip.METHODS: "gradient,lrp", oip.TARGET: "3", oip.TOP_K: 3}
    outputs, rparams = _answer(service, [V2Tensor.of("input", x)], params)
    names = {o.name: o for o in outputs}
    assert names["probabilities"].shape == [2, 10] and names["predicted_class"].datatype == "INT64"
    assert names["heatmap_gradient"].shape == [2, 1, 28, 28]
    assert "conservation" in names["heatmap_lrp"].parameters
    back = oip.responses_from_v2(outputs, rparams, model="tiny", request_id="r1")
    for b in range(2):
        direct = service.handle([build_request(x[b], methods=["gradient", "lrp"], target=3, top_k=3)])[0]
        assert [s.index for s in back[b].prediction.top] == [s.index for s in direct.prediction.top]
        np.testing.assert_allclose(
            [s.probability for s in back[b].prediction.top],
            [s.probability for s in direct.prediction.top],
            rtol=1e-5,
        )
        assert [h.method for h in back[b].heatmaps] == [h.method for h in direct.heatmaps]
        for got, want in zip(back[b].heatmaps, direct.heatmaps, strict=True):
            assert got.target == want.target == 3
            np.testing.assert_allclose(
                np.frombuffer(got.values.data, np.float32),
                np.frombuffer(want.values.data, np.float32),
                rtol=1e-4,
                atol=1e-7,  # batch of 2 vs 1: float rounding
            )
            assert dict(got.stats) == pytest.approx(dict(want.stats), rel=1e-4, abs=1e-6)


def test_top3_and_float16(service) -> None:
    x = _pixels(1, 1)
    params = {oip.METHODS: "gradient", oip.TARGET: "top3", oip.VALUE_TYPE: "float16", oip.REDUCE: "sum"}
    outputs, rparams = _answer(service, [V2Tensor.of("input", x)], params)
    heat = next(o for o in outputs if o.name == "heatmap_gradient")
    assert heat.datatype == "FP16" and heat.shape == [1, 3, 1, 28, 28] and "scale" in heat.parameters
    back = oip.responses_from_v2(outputs, rparams, model="tiny")[0]
    assert len(back.heatmaps) == 3 and back.heatmaps[0].values.scale > 0


def test_bytes_input_and_client_request(service, digit_png) -> None:
    inputs, params = oip.request_to_v2(build_request(digit_png, methods={"gradient": {}}, target="predicted"))
    assert inputs[0].datatype == "BYTES" and params[oip.METHODS] == "gradient"
    outputs, _ = _answer(service, inputs, params)
    assert {o.name for o in outputs} >= {"heatmap_gradient", "evidence_gradient", "top_labels"}


def test_base64_bytes_rows_equal_binary_rows(service, digit_png) -> None:
    """REST's form of encoded images (KServe's REST refuses non-UTF-8 binary BYTES): base64 text rows
    with ``content_type: base64`` decode to the same request as the binary rows."""
    (binary,), params = oip.request_to_v2(build_request(digit_png, methods={"gradient": {}}, target=3))
    text = V2Tensor("input", "BYTES", binary.shape, np.array(oip.to_base64(binary), dtype=object))
    text.parameters[oip.CONTENT_TYPE] = oip.BASE64
    (a,) = codec.decode([binary], params, service.card)
    (b,) = codec.decode([text], params, service.card)
    assert a.input.encoded == b.input.encoded == digit_png
    text.data = np.array(["%% not base64 %%"], dtype=object)
    with pytest.raises(InvalidInputError, match="not base64"):
        codec.decode([text], params, service.card)


@pytest.mark.parametrize(
    ("inputs", "params", "error"),
    [
        ([V2Tensor.of("input", _pixels(0)[:, :, :20])], {}, InvalidInputError),
        ([V2Tensor.of("input", _pixels(0).astype(np.float64))], {}, InvalidInputError),
        ([V2Tensor.of("input", _pixels(0))] * 2, {}, InvalidInputError),
        ([V2Tensor.of("input", _pixels(0))], {"xai_bogus": "1"}, InvalidParameterError),
        ([V2Tensor.of("input", _pixels(0))], {"xai_param.lrp.eps": "1"}, InvalidParameterError),
        ([V2Tensor.of("input", _pixels(0))], {oip.TARGET: "top"}, InvalidTargetError),
        ([V2Tensor.of("input", _pixels(0))], {oip.VALUE_TYPE: "int4"}, InvalidParameterError),
    ],
)
def test_bad_requests_raise_typed_errors(card, inputs, params, error) -> None:
    with pytest.raises(error):
        codec.decode(inputs, params, card)


def test_row_failures_map_to_protocol_status(service) -> None:
    x = _pixels(2, 1)
    rows = codec.decode([V2Tensor.of("input", x)], {oip.METHODS: "nope"}, service.card)
    failure = codec.failed_row(service.handle(rows))
    assert failure is not None and (failure.http_status, failure.grpc_code) == (400, "INVALID_ARGUMENT")
    rows = codec.decode(
        [V2Tensor.of("input", x)], {oip.METHODS: "gradient", "xai_param.gradient.nope": "1"}, service.card
    )
    failure = codec.failed_row(service.handle(rows))
    assert failure is not None and failure.http_status == 400
    assert codec.failure_of("RESOURCE_EXHAUSTED", "x") == codec.Failure(413, "RESOURCE_EXHAUSTED", "x")
    assert codec.failure_of("UNAUTHENTICATED", "x").http_status == 401


def test_raw_round_trip() -> None:
    t = V2Tensor.of("input", np.array([b"ab", b"", b"\x00\xff"], dtype=object))
    back = oip.from_raw("input", "BYTES", t.shape, oip.to_raw(t))
    assert list(back.data) == [b"ab", b"", b"\x00\xff"]
    f = V2Tensor.of("x", _pixels(3))
    np.testing.assert_array_equal(oip.from_raw("x", "FP32", f.shape, oip.to_raw(f)).data, f.data)


def test_grpc_parameters_and_deadline() -> None:
    from xai_client.api.oip import grpc_predict_v2_pb2 as v2

    params = {"a": v2.InferParameter(string_param="x"), "b": v2.InferParameter(int64_param=3)}
    params["c"] = v2.InferParameter(bool_param=True)
    assert codec.plain_parameters(params) == {"a": "x", "b": 3, "c": True}
    with pytest.raises(InvalidParameterError, match="as strings"):  # a float from tritonclient arrives empty
        codec.plain_parameters({"alpha": v2.InferParameter()})
    with pytest.raises(InvalidParameterError):
        codec.plain_parameters({"alpha": 0.5})
    assert codec.failure_of("DEADLINE_EXCEEDED", "late") == codec.Failure(504, "DEADLINE_EXCEEDED", "late")
    assert codec.failure_of("SOMETHING_ELSE", "bug").http_status == 500


def test_past_deadline_fails_the_request(service) -> None:
    rows = codec.decode(
        [V2Tensor.of("input", _pixels(4, 1))], {oip.METHODS: "gradient", oip.DEADLINE: "1.0"}, service.card
    )
    failure = codec.failed_row(service.handle(rows))
    assert failure is not None and (failure.http_status, failure.grpc_code) == (504, "DEADLINE_EXCEEDED")


def test_batcher_answers_each_caller_its_rows_and_batches_the_waiting() -> None:
    import asyncio
    import threading

    from xai_client.api.v1 import explain_pb2 as pb

    from xai_serve.serving.v2.batcher import Batcher

    gate, sizes = threading.Event(), []

    def handle(items):
        sizes.append(len(items))
        gate.wait(5)  # the first batch holds the model while the others queue
        return [pb.ExplainResponse(request_id=r.request_id) for r in items]

    batcher = Batcher(handle, max_rows=16)

    async def main() -> list[list[str]]:
        def call(i: int) -> asyncio.Future:
            return asyncio.ensure_future(
                batcher.submit([pb.ExplainRequest(request_id=f"{i}-{j}") for j in range(2)])
            )

        tasks = [call(0)]
        await asyncio.sleep(0.2)  # the worker takes it and holds the model
        tasks += [call(i) for i in range(1, 5)]
        await asyncio.sleep(0.2)
        gate.set()
        return [[r.request_id for r in await t] for t in tasks]

    # in a thread of its own: a session-scoped browser (Playwright's sync API) may hold this thread's loop
    out: list[list[list[str]]] = []
    runner = threading.Thread(target=lambda: out.append(asyncio.run(main())))
    runner.start()
    runner.join(30)
    assert out, "the batcher did not answer"
    answers = out[0]
    batcher.close()
    assert answers == [[f"{i}-0", f"{i}-1"] for i in range(5)]
    assert sizes == [2, 8]  # the four that queued while the model was busy went in together
