"""Property-based fuzzing of the request path with malformed and adversarial payloads.

1. In-process, fast, many examples: the request decoder (``parse_payload`` -> ``decode_input`` ->
   ``validate_target``) either yields a finite model input of the model's shape or raises a typed
   ``XaiError`` — never anything else. Hypothesis-generated payloads (XAI_FUZZ_DECODER, default
   2000; shrinking finds a minimal failing case) plus a cheap numpy-seeded mutation fuzz of valid
   requests (XAI_FUZZ_MUTATIONS, default 8000).
2. In-process, the transport-neutral ``ExplainService`` on a small model: batches mixing fuzzed and
   good requests get exactly one response each, every bad one a typed non-INTERNAL status, every
   good one OK (200 examples).
3. Live: fuzzed payloads over gRPC and HTTP against a real TorchServe (XAI_FUZZ_LIVE, default 1000
   over both transports): each answered with a typed error or a valid response, the worker PIDs are
   unchanged at the end (zero worker deaths), and a good request still succeeds.

At the defaults: 2000 + 8000 malformed payloads against the decoder, 200 batches of 1-4 fuzzed
requests (plus a good one) against the service, and 1000 against the live server (each alongside a
good request), i.e. about 11,500 malformed payloads and 1,200 good requests.
"""

from __future__ import annotations

import json
import math
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import grpc
import numpy as np
import pytest
import torch
from fuzz_payloads import GRPC_KEY, Payload, payloads
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from load_support import MODEL, ServedModel, env_int, images
from xai_client.api.torchserve import inference_pb2, inference_pb2_grpc
from xai_client.api.v1 import explain_pb2 as pb
from xai_client.tokens import read_key_file

from xai_serve.errors import XaiError
from xai_serve.models import ModelCard
from xai_serve.serving.inputs import decode_input
from xai_serve.serving.service import ExplainService
from xai_serve.serving.validate import validate_target
from xai_serve.serving.wire import parse_payload

pytestmark = [
    pytest.mark.slow,
    pytest.mark.integration,
    # expected while decoding adversarial input: float64 -> float32 casts overflow, PIL palettes
    pytest.mark.filterwarnings("ignore:overflow encountered:RuntimeWarning"),
    pytest.mark.filterwarnings("ignore:Palette images with Transparency:UserWarning"),
]

DECODER_EXAMPLES = env_int("XAI_FUZZ_DECODER", 2000)
MUTATIONS = env_int("XAI_FUZZ_MUTATIONS", 8000)
SERVICE_EXAMPLES = env_int("XAI_FUZZ_SERVICE", 200)
TYPED_CODES = {pb.INVALID_ARGUMENT, pb.NOT_FOUND, pb.OUT_OF_RANGE, pb.FAILED_PRECONDITION}

DIGITS = ModelCard(
    model="mlp",
    model_kwargs={},
    dataset="digits",
    input_shape=[1, 28, 28],
    mean=[0.1307],
    std=[0.3081],
    labels=[str(i) for i in range(10)],
)
RGB = ModelCard(
    model="simplenet_5m",
    model_kwargs={},
    dataset="cifar10",
    input_shape=[3, 32, 32],
    mean=[0.49, 0.48, 0.45],
    std=[0.25, 0.24, 0.26],
    labels=[f"c{i}" for i in range(10)],
)
FUZZ = settings(
    max_examples=DECODER_EXAMPLES,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.filter_too_much],
)


def decode(payload: Payload, card: ModelCard) -> torch.Tensor:
    """What the handler does before the model sees a request."""
    req = parse_payload(payload.row, payload.content_type)
    decoded = decode_input(req.input, card)
    validate_target(req.target, card.num_classes)
    return decoded.x


@FUZZ
@given(payload=payloads(), card=st.sampled_from([DIGITS, RGB]))
def test_decoder_answers_every_payload_with_a_tensor_or_a_typed_error(
    payload: Payload, card: ModelCard
) -> None:
    try:
        x = decode(payload, card)
    except XaiError as exc:
        assert exc.code in {"INVALID_ARGUMENT", "NOT_FOUND"}, (payload.family, exc)
        assert str(exc), "typed errors carry a message"
        return
    # accepted: it must be something the model can take
    assert list(x.shape) == card.input_shape, payload.family
    assert x.dtype == torch.float32
    assert bool(torch.isfinite(x).all()), payload.family


def _seed_corpus() -> list[Payload]:
    """Valid requests of every input form, the starting points of the mutation fuzz."""
    import io

    import numpy as np
    from PIL import Image
    from xai_client.requests import build_request

    rng = np.random.default_rng(0)
    corpus: list[Payload] = []
    for mode, fmt in (("L", "PNG"), ("RGB", "PNG"), ("L", "JPEG"), ("RGB", "JPEG"), ("RGBA", "PNG")):
        buf = io.BytesIO()
        img = Image.fromarray(rng.integers(0, 256, (28, 28, 4), dtype=np.uint8), "RGBA").convert(mode)
        img.save(buf, format=fmt)
        data = buf.getvalue()
        for methods, target in (([], None), (["gradient", "lrp"], 3), (["gradcam"], "top2")):
            req = build_request(data, methods=methods, target=target).SerializeToString()
            corpus.append(Payload("mutation", {GRPC_KEY: req}, None))
            corpus.append(Payload("mutation", {"body": req}, "application/x-protobuf"))
        corpus.append(Payload("mutation", {"body": data}, f"image/{fmt.lower()}"))
    for arr in (
        rng.random((1, 28, 28), dtype=np.float32),
        rng.integers(0, 256, (3, 32, 32), dtype=np.uint8),
        rng.random((28, 28)).astype(np.float64),
        rng.random((1, 1, 28, 28)).astype(np.float16),
    ):
        req = build_request(arr, methods=["gradient"], target=1).SerializeToString()
        corpus.append(Payload("mutation", {GRPC_KEY: req}, None))
    return corpus


def _mutate(data: bytes, rng: Any) -> bytes:
    """One random mutation: flip bytes, truncate, insert, delete, duplicate or overwrite a span."""
    b = bytearray(data)
    kind = int(rng.integers(0, 6))
    if not b or kind == 5:
        return bytes(rng.integers(0, 256, int(rng.integers(0, 512)), dtype=np.uint8))
    pos = int(rng.integers(0, len(b)))
    span = int(rng.integers(1, 17))
    if kind == 0:
        for _ in range(int(rng.integers(1, 9))):
            b[int(rng.integers(0, len(b)))] = int(rng.integers(0, 256))
    elif kind == 1:
        del b[pos:]
    elif kind == 2:
        b[pos:pos] = bytes(rng.integers(0, 256, span, dtype=np.uint8))
    elif kind == 3:
        del b[pos : pos + span]
    else:
        b[pos:pos] = b[pos : pos + span] * int(rng.integers(2, 64))
    return bytes(b)


def test_decoder_survives_mutated_valid_requests() -> None:
    """Mutation fuzz (numpy-seeded, cheap per case): valid requests with bytes flipped, cut,
    inserted, deleted or repeated; each decodes to a valid tensor or raises a typed XaiError."""
    rng = np.random.default_rng(1)
    corpus = _seed_corpus()
    outcomes: dict[str, int] = {}
    for i in range(MUTATIONS):
        seed = corpus[i % len(corpus)]
        key, value = next(iter(seed.row.items()))
        mutated = Payload("mutation", {key: _mutate(value, rng)}, seed.content_type)
        card = DIGITS if i % 3 else RGB
        try:
            x = decode(mutated, card)
        except XaiError as exc:
            assert exc.code in {"INVALID_ARGUMENT", "NOT_FOUND"}, exc
            outcomes[type(exc).__name__] = outcomes.get(type(exc).__name__, 0) + 1
            continue
        assert list(x.shape) == card.input_shape and bool(torch.isfinite(x).all())
        outcomes["accepted"] = outcomes.get("accepted", 0) + 1
    print(f"\ndecoder mutation fuzz, {MUTATIONS} payloads: {dict(sorted(outcomes.items()))}")
    assert sum(outcomes.values()) == MUTATIONS


@pytest.mark.parametrize("value", [3.0e38, -3.4e38, 1e300])
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_decoder_refuses_values_that_overflow_when_normalised(value: float, dtype: str) -> None:
    """Regression (found by the mutation fuzz): finite float32 values near the limit became ±inf
    after normalisation ((x - 0.5) / 0.25) and reached the model."""
    from xai_client.requests import build_request

    with np.errstate(over="ignore"):
        arr = np.full((1, 28, 28), value, dtype=np.float64).astype(dtype)
    with pytest.raises(XaiError, match=r"NaN or infinite|overflow"):
        decode(Payload("regression", {GRPC_KEY: build_request(arr).SerializeToString()}, None), DIGITS)


@pytest.fixture(scope="module")
def service() -> ExplainService:
    """The transport-neutral service on a small random MLP for 1x28x28 digits."""
    from xai_serve.models import create_model

    torch.manual_seed(0)
    model = create_model("mlp", input_shape=DIGITS.input_shape, num_classes=10)
    return ExplainService("fuzz", model, DIGITS)


def _good_request() -> pb.ExplainRequest:
    req = pb.ExplainRequest()
    req.input.tensor.dtype = pb.DTYPE_FLOAT32
    req.input.tensor.shape.extend([1, 28, 28])
    req.input.tensor.data = torch.rand(1, 28, 28).numpy().tobytes()
    req.methods.add(name="gradient")
    req.target.predicted = True
    return req


@settings(
    max_examples=SERVICE_EXAMPLES,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(batch=st.lists(payloads(), min_size=1, max_size=4), good_at=st.integers(0, 4))
def test_service_answers_each_request_of_a_mixed_batch(
    service: ExplainService, batch: list[Payload], good_at: int
) -> None:
    items: list[pb.ExplainRequest | BaseException] = []
    for p in batch:
        try:
            items.append(parse_payload(p.row, p.content_type))
        except XaiError as exc:
            items.append(exc)
    good_at = min(good_at, len(items))
    items.insert(good_at, _good_request())
    responses = service.handle(items)
    assert len(responses) == len(items)
    good = responses[good_at]
    assert good.status.code == pb.OK, good.status
    assert good.heatmaps and list(good.heatmaps[0].values.shape) == [1, 28, 28]
    for resp in responses:
        if resp.status.code != pb.OK:
            assert resp.status.code in TYPED_CODES, resp.status
            assert resp.status.message and resp.status.reason
        for h in resp.heatmaps:
            values = h.values
            assert math.prod(values.shape) * 4 == len(values.data)


# ------------------------------------------------------------------------------------------------
# live: a real TorchServe

LIVE_EXAMPLES = env_int("XAI_FUZZ_LIVE", 1000)
SERVE_OPTIONS = {"batch_size": 8, "max_batch_delay_ms": 5, "workers": 1}
FRONTEND_FORM_ERROR = -1  # see _check_http
ACCEPTS = (None, "application/x-protobuf", "application/json", "image/png", "*/*", "text/html")


def _check_grpc(stub: Any, token: str | None, payload: Payload) -> int:
    """Send ``payload`` as the gRPC input map; return the handler's status code."""
    req = inference_pb2.PredictionsRequest(model_name=MODEL, input=payload.row)
    meta = [("authorization", f"Bearer {token}")] if token else []
    reply = stub.Predictions(req, timeout=30, metadata=meta)  # an RpcError here fails the test
    if GRPC_KEY not in payload.row:  # not our gRPC key: answered like an HTTP body, as JSON
        return _json_code(reply.prediction)
    resp = pb.ExplainResponse()
    resp.ParseFromString(reply.prediction)
    return int(resp.status.code)


def _json_code(body: bytes) -> int:
    data = json.loads(body)
    code = data.get("status", {}).get("code", 0)
    return int(pb.Code.Value(code)) if isinstance(code, str) else int(code)


def _check_http(base: str, token: str | None, payload: Payload, explain: bool, accept: str | None) -> int:
    """POST ``payload`` as the body; return the handler's status code (asserting a typed answer)."""
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    if payload.content_type:
        headers["Content-Type"] = payload.content_type
    if accept:
        headers["Accept"] = accept
    url = f"{base}/{'explanations' if explain else 'predictions'}/{MODEL}"
    request = urllib.request.Request(url, data=payload.body, headers=headers, method="POST")
    try:
        with urllib.request.urlopen(request, timeout=30) as r:
            status, body, ctype = r.status, r.read(), r.headers.get("Content-Type", "")
    except urllib.error.HTTPError as exc:
        status, body, ctype = exc.code, exc.read(), exc.headers.get("Content-Type", "")
    if status == 500 and not payload.content_type and b"ErrorDataDecoderException" in body:
        # no Content-Type: urllib (like `curl -d`) says application/x-www-form-urlencoded, and
        # TorchServe's frontend fails to form-decode binary bytes before any worker sees them
        return FRONTEND_FORM_ERROR
    assert status < 500, (status, body[:300])
    if status == 200:
        return pb.OK
    if ctype.startswith("application/x-protobuf"):
        resp = pb.ExplainResponse()
        resp.ParseFromString(body)
        return int(resp.status.code)
    return _json_code(body)


def test_live_handler_answers_fuzzed_requests_without_worker_deaths(served: ServedModel) -> None:
    tokens = read_key_file(served.config.key_file)
    channel = grpc.insecure_channel(served.config.grpc_address)
    stub = inference_pb2_grpc.InferenceAPIsServiceStub(channel)
    base = served.config.inference_url
    good_client = served.client("grpc", timeout=30.0, retries=0)
    good_image = images(1)[0]
    pids = served.worker_pids()
    counts: dict[str, int] = {}
    pool = ThreadPoolExecutor(max_workers=2)

    @settings(
        max_examples=LIVE_EXAMPLES,
        deadline=None,
        derandomize=True,
        database=None,
        suppress_health_check=[
            HealthCheck.too_slow,
            HealthCheck.data_too_large,
            HealthCheck.function_scoped_fixture,
        ],
    )
    @given(
        payload=payloads(),
        transport=st.sampled_from(["grpc", "http"]),
        explain=st.booleans(),
        accept=st.sampled_from(ACCEPTS),
    )
    def send(payload: Payload, transport: str, explain: bool, accept: str | None) -> None:
        # a good request alongside, so fuzzed and good requests share batches
        good = pool.submit(good_client.predict, served.model, good_image)
        if transport == "grpc":
            code = _check_grpc(stub, tokens.inference, payload)
        else:
            code = _check_http(base, tokens.inference, payload, explain, accept)
        assert code in (pb.OK, FRONTEND_FORM_ERROR) or code in TYPED_CODES, (payload.family, code)
        assert good.result(timeout=60).top
        name = {pb.OK: "OK", FRONTEND_FORM_ERROR: "frontend form-decode 500"}.get(code) or pb.Code.Name(code)
        key = f"{transport} {name}"
        counts[key] = counts.get(key, 0) + 1

    try:
        send()
    finally:
        pool.shutdown(wait=True)
        channel.close()
    print(f"\nlive fuzz, {LIVE_EXAMPLES} payloads: {dict(sorted(counts.items()))}")
    assert served.worker_pids() == pids, "a worker died or was restarted"
    assert good_client.explain(served.model, good_image, ["gradient"]).heatmaps
    good_client.close()
