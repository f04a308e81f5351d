"""Hypothesis strategies for malformed and adversarial xai-serve requests, shared by the in-process
decoder fuzz and the live-server fuzz in test_fuzz.py (importable: conftest.py puts tests/load on
sys.path).

Each strategy draws a *payload* as TorchServe would hand it to the handler: a mapping of request
keys to bytes plus the request's content type. The families: random bytes, truncated PNG/JPEG,
images whose header claims huge dimensions, images with the wrong channel count or odd modes,
raw tensors with wrong dtypes / shapes / byte counts / extreme values, and ExplainRequests with bad
protobuf fields (unknown methods, out-of-range targets, unknown enum values, unknown fields).
"""

from __future__ import annotations

import io
from dataclasses import dataclass

import numpy as np
from hypothesis import strategies as st
from PIL import Image
from xai_client.api.v1 import explain_pb2 as pb

from xai_serve.testing import png_header_only

GRPC_KEY = "xai_request"
PROTOBUF = "application/x-protobuf"
CONTENT_TYPES = (None, "", PROTOBUF, "application/json", "image/png", "image/jpeg", "text/plain")
JSON_BODIES = (
    '{"input": {}}',
    '{"input": {"encoded": "!!"}}',
    "[]",
    "null",
    '{"methods": 3}',
    '{"input": {"tensor": {"dtype": "DTYPE_FLOAT32", "shape": [-1]}}}',
)
EXTREMES = (0.0, -0.0, 1e38, -1e38, 3.4e38, 1e-45, -1e-45, 65504.0, np.inf, -np.inf, np.nan, 1e300)


@dataclass(frozen=True)
class Payload:
    family: str
    row: dict[str, bytes]
    content_type: str | None

    @property
    def body(self) -> bytes:
        return next(iter(self.row.values()))


@st.composite
def encoded_images(draw: st.DrawFn) -> bytes:
    """A valid PNG or JPEG of random size and mode (maybe the wrong channel count for the model)."""
    mode = draw(st.sampled_from(["L", "RGB", "RGBA", "LA", "P", "1", "I;16", "CMYK", "I", "F"]))
    fmt = draw(st.sampled_from(["PNG", "JPEG"]))
    if fmt == "JPEG" and mode not in ("L", "RGB", "CMYK"):
        mode = "RGB"
    w = draw(st.integers(1, 64))
    h = draw(st.integers(1, 64))
    seed = draw(st.integers(0, 2**16))
    arr = np.random.default_rng(seed).integers(0, 256, size=(h, w, 4), dtype=np.uint8)
    img = (
        Image.fromarray(arr, "RGBA").convert(mode)
        if mode not in ("I;16", "I", "F")
        else (Image.fromarray(arr[..., 0]).convert(mode))
    )
    buf = io.BytesIO()
    try:
        img.save(buf, format=fmt)
    except OSError:  # a mode this format cannot store
        buf = io.BytesIO()
        img.convert("RGB").save(buf, format=fmt)
    return buf.getvalue()


@st.composite
def truncated_images(draw: st.DrawFn) -> bytes:
    data = draw(encoded_images())
    cut = draw(st.integers(0, max(len(data) - 1, 0)))
    return data[:cut]


@st.composite
def huge_images(draw: st.DrawFn) -> bytes:
    """Header claims up to 2^31-1 pixels a side (the decoder must refuse before allocating)."""
    w = draw(st.one_of(st.integers(4097, 2**31 - 1), st.sampled_from([20000, 65535, 100000])))
    h = draw(st.one_of(st.integers(1, 2**31 - 1), st.just(w)))
    return png_header_only(w, h, draw(st.sampled_from([0, 2, 4, 6])))


@st.composite
def corrupted_images(draw: st.DrawFn) -> bytes:
    """A valid image with a few bytes flipped (bad CRCs, broken entropy streams, bad headers)."""
    data = bytearray(draw(encoded_images()))
    for _ in range(draw(st.integers(1, 8))):
        pos = draw(st.integers(0, len(data) - 1))
        data[pos] = draw(st.integers(0, 255))
    return bytes(data)


@st.composite
def bad_tensors(draw: st.DrawFn) -> pb.Tensor:
    msg = pb.Tensor()
    msg.dtype = draw(st.sampled_from([0, 1, 2, 3, 4, 5, 99, -1, 2**31 - 1]))
    shape = draw(
        st.lists(
            st.one_of(st.integers(-3, 40), st.sampled_from([0, 2**31 - 1, 2**20, 65536, -(2**31)])),
            min_size=0,
            max_size=5,
        )
    )
    msg.shape.extend(shape)
    itemsize = {1: 4, 2: 8, 3: 2, 4: 1}.get(int(msg.dtype), 4)
    count = int(np.prod([max(s, 0) for s in shape])) if shape and all(0 <= s <= 64 for s in shape) else 0
    how = draw(st.sampled_from(["exact", "short", "long", "random", "extreme"]))
    if how == "random" or count == 0 or count > 100_000:
        msg.data = draw(st.binary(max_size=4096))
    elif how == "extreme" and int(msg.dtype) in (1, 2, 3):
        np_dtype = {1: "<f4", 2: "<f8", 3: "<f2"}[int(msg.dtype)]
        values = draw(st.lists(st.sampled_from(EXTREMES), min_size=count, max_size=count))
        with np.errstate(over="ignore"):
            msg.data = np.array(values, dtype=np.float64).astype(np_dtype).tobytes()
    else:
        n = count * itemsize + {"exact": 0, "short": -1, "long": 3, "extreme": 0}[how]
        msg.data = np.random.default_rng(count).integers(0, 256, size=max(n, 0), dtype=np.uint8).tobytes()
    return msg


@st.composite
def bad_requests(draw: st.DrawFn) -> pb.ExplainRequest:
    """ExplainRequests with one or more bad or odd fields."""
    req = pb.ExplainRequest()
    which = draw(st.sampled_from(["encoded", "truncated", "huge", "tensor", "none", "corrupt"]))
    if which == "encoded":
        req.input.encoded = draw(encoded_images())
    elif which == "truncated":
        req.input.encoded = draw(truncated_images())
    elif which == "huge":
        req.input.encoded = draw(huge_images())
    elif which == "corrupt":
        req.input.encoded = draw(corrupted_images())
    elif which == "tensor":
        req.input.tensor.CopyFrom(draw(bad_tensors()))
    req.input.normalized = draw(st.booleans())
    names = st.one_of(
        st.sampled_from(["gradient", "guided_backprop", "gradcam", "lrp", "no_such_method", "", "GRADIENT"]),
        st.text(max_size=12),
    )
    for name in draw(st.lists(names, max_size=3)):
        params = draw(st.dictionaries(st.text(max_size=8), st.text(max_size=8), max_size=2))
        req.methods.add(name=name, params=params)
    kind = draw(st.sampled_from(["class", "predicted", "topk", "none"]))
    if kind == "class":
        req.target.class_index = draw(st.integers(-(2**31), 2**31 - 1))
    elif kind == "topk":
        req.target.top_k = draw(st.integers(-(2**31), 2**31 - 1))
    elif kind == "predicted":
        req.target.predicted = draw(st.booleans())
    req.output = draw(st.sampled_from([0, 1, 2, 3, 4, 77, -5]))
    req.top_k = draw(st.integers(-(2**31), 2**31 - 1))
    req.request_id = draw(st.text(max_size=16))
    return req


@st.composite
def payloads(draw: st.DrawFn) -> Payload:
    """One request as TorchServe hands it to the handler, from any of the families above."""
    family = draw(
        st.sampled_from(
            ["random_bytes", "protobuf_garbage", "bad_request", "unknown_fields", "raw_image", "json"]
        )
    )
    if family == "random_bytes":
        data = draw(st.binary(max_size=2048))
        ctype = draw(st.sampled_from(CONTENT_TYPES))
        key = draw(st.sampled_from([GRPC_KEY, "body", "data"]))
        return Payload(family, {key: data}, ctype)
    if family == "protobuf_garbage":  # a valid request with random bytes spliced in
        data = draw(bad_requests()).SerializeToString()
        pos = draw(st.integers(0, len(data)))
        spliced = data[:pos] + draw(st.binary(min_size=1, max_size=16)) + data[pos:]
        return Payload(family, {GRPC_KEY: spliced}, None)
    if family == "unknown_fields":  # unknown field numbers and wire types after a valid request
        tag = draw(st.integers(16, 2**29 - 1))
        wire = draw(st.sampled_from([0, 1, 2, 5]))
        extra = _varint(tag << 3 | wire) + draw(st.binary(min_size=0, max_size=12))
        body = draw(bad_requests()).SerializeToString() + extra
        return Payload(family, {GRPC_KEY: body}, None)
    if family == "raw_image":
        data = draw(st.one_of(truncated_images(), huge_images(), corrupted_images(), encoded_images()))
        return Payload(family, {"body": data}, draw(st.sampled_from(["image/png", "image/jpeg", None])))
    if family == "json":
        text = draw(
            st.one_of(
                st.text(max_size=64),
                st.sampled_from(JSON_BODIES),
            )
        )
        return Payload(family, {"body": text.encode()}, "application/json")
    req = draw(bad_requests())
    if draw(st.booleans()):
        return Payload(family, {GRPC_KEY: req.SerializeToString()}, None)
    return Payload(family, {"body": req.SerializeToString()}, PROTOBUF)


def _varint(n: int) -> bytes:
    out = bytearray()
    while True:
        b = n & 0x7F
        n >>= 7
        if n:
            out.append(b | 0x80)
        else:
            out.append(b)
            return bytes(out)
