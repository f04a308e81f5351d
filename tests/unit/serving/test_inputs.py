"""Input tensors: PNG/JPEG bytes and pixel tensors -> the model's normalised input (no model involved)."""

from __future__ import annotations

import time

import numpy as np
import pytest
import torch
from xai_client.api.v1 import explain_pb2 as pb
from xai_client.tensors import to_proto

from xai_serve.errors import InvalidInputError
from xai_serve.serving.inputs import Limits, decode_input, header_size
from xai_serve.testing import png_header_only


def _input(
    encoded: bytes | None = None, tensor: np.ndarray | None = None, normalized: bool = False
) -> pb.Input:
    inp = pb.Input(normalized=normalized)
    if encoded is not None:
        inp.encoded = encoded
    if tensor is not None:
        to_proto(tensor, inp.tensor)
    return inp


def test_png_is_decoded_to_normalised_input(card, encode_png):
    arr = np.arange(28 * 28, dtype=np.uint8).reshape(28, 28)
    d = decode_input(_input(encode_png(arr)), card)
    expected = (torch.from_numpy(arr.astype(np.float32)) / 255.0 - 0.25) / 0.5
    assert d.x.shape == (1, 28, 28)
    torch.testing.assert_close(d.x[0], expected, rtol=0, atol=1e-6)
    torch.testing.assert_close(
        d.pixels[0], torch.from_numpy(arr.astype(np.float32)) / 255.0, rtol=0, atol=1e-7
    )


def test_larger_jpeg_is_resized_to_the_model_input(card, encode_png):
    arr = np.full((56, 84), 200, dtype=np.uint8)
    d = decode_input(_input(encode_png(arr, "JPEG")), card)
    assert d.x.shape == (1, 28, 28)
    # a constant image stays constant through resizing (JPEG of a flat image is exact up to 1 level)
    assert torch.allclose(d.pixels, torch.full((1, 28, 28), 200 / 255), atol=1.5 / 255)


def test_huge_png_is_refused_from_its_header_before_decoding(card):
    data = png_header_only(20000, 20000)
    assert len(data) < 200
    t0 = time.perf_counter()
    with pytest.raises(InvalidInputError, match=r"20000x20000.*refused before decoding"):
        decode_input(_input(data), card)
    assert time.perf_counter() - t0 < 0.5  # decoding 400 Mpixel would take far longer (and 400 MB)


def test_pixel_limit_is_configurable(card, encode_png):
    with pytest.raises(InvalidInputError, match="more than the limit 100"):
        decode_input(_input(encode_png(np.zeros((28, 28), np.uint8))), card, Limits(max_pixels=100))


@pytest.mark.parametrize(
    ("payload", "message"),
    [
        (b"", "empty image"),
        (b"this is not an image at all", "not a PNG or JPEG"),
        (b"GIF89a" + b"\0" * 40, "not a PNG or JPEG"),
    ],
)
def test_bad_bytes_are_invalid_input(card, payload, message):
    with pytest.raises(InvalidInputError, match=message):
        decode_input(_input(payload), card)


def test_truncated_png_is_invalid_input(card, digit_png):
    with pytest.raises(InvalidInputError, match=r"could not decode|not a PNG"):
        decode_input(_input(digit_png[: len(digit_png) // 2]), card)


def test_wrong_channel_count_image(card, encode_png):
    rgb = np.zeros((28, 28, 3), np.uint8)
    with pytest.raises(InvalidInputError, match=r"3 channels.*expects 1"):
        decode_input(_input(encode_png(rgb)), card)


def test_alpha_is_dropped_before_counting_channels(card, encode_png):
    la = np.zeros((28, 28, 2), np.uint8)
    la[..., 0] = 51
    la[..., 1] = 255
    d = decode_input(_input(encode_png(la)), card)
    torch.testing.assert_close(d.pixels, torch.full((1, 28, 28), 0.2), rtol=0, atol=1e-6)


def test_uint8_tensor_is_scaled_and_normalised(card):
    arr = np.full((1, 28, 28), 255, np.uint8)
    d = decode_input(_input(tensor=arr), card)
    torch.testing.assert_close(d.x, torch.full((1, 28, 28), (1.0 - 0.25) / 0.5), rtol=0, atol=1e-7)


def test_normalized_tensor_is_used_bit_for_bit(card):
    arr = np.random.default_rng(1).normal(size=(1, 1, 28, 28)).astype(np.float32)
    d = decode_input(_input(tensor=arr, normalized=True), card)
    assert torch.equal(d.x, torch.from_numpy(arr[0]))


def test_float_tensor_of_another_size_is_resized(card):
    d = decode_input(_input(tensor=np.full((56, 56), 0.5, np.float32)), card)
    torch.testing.assert_close(d.pixels, torch.full((1, 28, 28), 0.5), rtol=0, atol=1e-6)


@pytest.mark.parametrize(
    ("arr", "message"),
    [
        (np.full((1, 28, 28), np.nan, np.float32), "NaN or infinite"),
        (
            np.concatenate([np.zeros((1, 27, 28)), np.full((1, 1, 28), np.inf)], axis=1).astype(np.float32),
            "NaN or infinite",
        ),
        (np.zeros((3, 28, 28), np.float32), "3 channels.*expects 1"),
        (np.zeros((2, 1, 28, 28), np.float32), r"must be \[C,H,W\]"),
    ],
)
def test_bad_tensors(card, arr, message):
    with pytest.raises(InvalidInputError, match=message):
        decode_input(_input(tensor=arr), card)


def test_tensor_byte_count_must_match_shape(card):
    inp = pb.Input()
    inp.tensor.dtype = pb.DTYPE_FLOAT32
    inp.tensor.shape.extend([1, 28, 28])
    inp.tensor.data = b"\0" * 100
    with pytest.raises(InvalidInputError, match="100 bytes"):
        decode_input(inp, card)


def test_normalized_tensor_needs_exact_shape(card):
    with pytest.raises(InvalidInputError, match="input shape"):
        decode_input(_input(tensor=np.zeros((1, 14, 14), np.float32), normalized=True), card)


def test_empty_input(card):
    with pytest.raises(InvalidInputError, match="empty request"):
        decode_input(pb.Input(), card)


def test_header_size_reads_png_and_jpeg(encode_png):
    arr = np.zeros((31, 47), np.uint8)
    assert header_size(encode_png(arr)) == (47, 31)
    assert header_size(encode_png(arr, "JPEG")) == (47, 31)
    assert header_size(b"nothing") is None
