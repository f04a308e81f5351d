"""Input tensors: a wire ``Input`` (PNG/JPEG bytes or a pixel tensor) -> the model's normalised input
and its displayable pixels, checked against the model card and the size limits.

Everything here raises :class:`~xai_serve.errors.InvalidInputError` with a message naming the problem;
nothing here touches the model.

Encoded images are checked from their header *before* decoding: format (PNG/JPEG only), pixel
count and channel count, so a 20000x20000 PNG is refused without allocating its pixels.
"""

from __future__ import annotations

import functools
import io
import warnings
from dataclasses import dataclass

import numpy as np
import torch
from PIL import Image
from xai_client.api.v1 import explain_pb2 as pb
from xai_client.tensors import from_proto

from xai_serve.errors import InvalidInputError
from xai_serve.models import ModelCard

IMAGE_FORMATS = ("PNG", "JPEG")

# image modes by channel count after dropping alpha
_GREY_MODES = {"1", "L", "LA", "I", "I;16", "I;16B", "I;16L", "F", "La"}
_COLOUR_MODES = {"RGB", "RGBA", "RGBa", "RGBX", "YCbCr", "P", "PA"}


@dataclass(frozen=True)
class Limits:
    """Refuse inputs above these sizes (checked before decoding)."""

    max_pixels: int = 4096 * 4096
    max_bytes: int = 32 * 1024 * 1024


@dataclass
class DecodedInput:
    """A validated input: the model input ``x`` [C,H,W] and the displayable ``pixels`` [C,H,W] in 0..1."""

    x: torch.Tensor
    pixels: torch.Tensor


def _channels_of_mode(mode: str) -> int | None:
    if mode in _GREY_MODES:
        return 1
    if mode in _COLOUR_MODES:
        return 3
    return None


_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
# JPEG start-of-frame markers (baseline, progressive, lossless, ...): they carry the size
_JPEG_SOF = {0xC0, 0xC1, 0xC2, 0xC3, 0xC5, 0xC6, 0xC7, 0xC9, 0xCA, 0xCB, 0xCD, 0xCE, 0xCF}


def header_size(data: bytes) -> tuple[int, int] | None:
    """(width, height) read from a PNG IHDR or a JPEG SOF header, None if neither is found."""
    if data.startswith(_PNG_SIGNATURE) and len(data) >= 24 and data[12:16] == b"IHDR":
        return int.from_bytes(data[16:20], "big"), int.from_bytes(data[20:24], "big")
    if data.startswith(b"\xff\xd8"):
        i = 2
        while i + 9 <= len(data):
            if data[i] != 0xFF:
                return None
            marker = data[i + 1]
            if marker in (0xD8, 0x01) or 0xD0 <= marker <= 0xD7:
                i += 2
                continue
            length = int.from_bytes(data[i + 2 : i + 4], "big")
            if marker in _JPEG_SOF:
                return int.from_bytes(data[i + 7 : i + 9], "big"), int.from_bytes(data[i + 5 : i + 7], "big")
            i += 2 + length
    return None


def _resize_centre_crop(img: Image.Image, side: int, h: int, w: int) -> Image.Image:
    """The shorter side resized to ``side`` (bilinear), then the centre ``h`` x ``w`` cut out: ImageNet's
    evaluation transform (torchvision ``Resize(side)`` + ``CenterCrop``), recorded as ``card.resize``."""
    width, height = img.size
    short, long = min(width, height), max(width, height)
    new_long = int(side * long / short)  # torchvision's rounding
    new = (side, new_long) if width <= height else (new_long, side)
    img = img.resize(new, Image.Resampling.BILINEAR)
    left, top = round((new[0] - w) / 2.0), round((new[1] - h) / 2.0)
    return img.crop((left, top, left + w, top + h))


def _decode_image(data: bytes, card: ModelCard, limits: Limits) -> torch.Tensor:
    """PNG/JPEG bytes -> [C,H,W] float in 0..1 at the model's resolution."""
    if not data:
        raise InvalidInputError("empty image")
    if len(data) > limits.max_bytes:
        raise InvalidInputError(f"image is {len(data)} bytes, more than the limit {limits.max_bytes}")
    size = header_size(data)
    if size is not None and size[0] * size[1] > limits.max_pixels:
        raise InvalidInputError(
            f"image is {size[0]}x{size[1]} = {size[0] * size[1]} pixels, more than the limit "
            f"{limits.max_pixels}; refused before decoding"
        )
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            img = Image.open(io.BytesIO(data), formats=list(IMAGE_FORMATS))  # reads the header only
    except Image.DecompressionBombError as exc:
        raise InvalidInputError(f"image too large: {exc}") from None
    except Exception as exc:  # UnidentifiedImageError, SyntaxError, OSError from a broken header
        raise InvalidInputError(f"not a PNG or JPEG image ({type(exc).__name__}: {exc})") from None
    width, height = img.size
    if width * height > limits.max_pixels:
        raise InvalidInputError(
            f"image is {width}x{height} = {width * height} pixels, more than the limit {limits.max_pixels}; "
            "refused before decoding"
        )
    want = card.input_shape[0]
    have = _channels_of_mode(img.mode)
    if have is None:
        raise InvalidInputError(f"unsupported image mode {img.mode!r}; send greyscale or RGB")
    if have != want:
        raise InvalidInputError(
            f"image has {have} channel{'s' if have > 1 else ''} ({img.mode}); the model expects {want}"
        )
    try:
        img.load()
    except Exception as exc:  # truncated or corrupt pixel data
        raise InvalidInputError(f"could not decode the image ({type(exc).__name__}: {exc})") from None
    rgb: Image.Image
    if want == 1:
        if img.mode in ("I", "I;16", "I;16B", "I;16L", "F"):
            wide = np.asarray(img, dtype=np.float64)
            scale = 65535.0 if img.mode.startswith("I;16") or wide.max() > 255 else 255.0
            rgb = Image.fromarray((np.clip(wide / scale, 0, 1) * 255).round().astype(np.uint8))
        else:
            rgb = img.convert("L")
    else:
        rgb = img.convert("RGB")
    h, w = card.input_shape[1], card.input_shape[2]
    if card.resize and rgb.size != (w, h):
        rgb = _resize_centre_crop(rgb, card.resize, h, w)
    if rgb.size != (w, h):
        rgb = rgb.resize((w, h), Image.Resampling.BILINEAR)
    arr = np.asarray(rgb, dtype=np.float32) / 255.0
    arr = arr[None] if arr.ndim == 2 else arr.transpose(2, 0, 1)
    return torch.from_numpy(np.ascontiguousarray(arr))


def _tensor_input(msg: pb.Tensor, card: ModelCard, limits: Limits, normalized: bool) -> torch.Tensor:
    c = card.input_shape[0]
    try:
        arr = from_proto(msg, max_elements=limits.max_pixels * max(c, 3))
    except ValueError as exc:
        raise InvalidInputError(f"bad tensor: {exc}") from None
    shape = list(arr.shape)
    if len(shape) == 4 and shape[0] == 1:
        arr = arr[0]
    elif len(shape) == 2:
        arr = arr[None]
    elif len(shape) != 3:
        raise InvalidInputError(f"tensor shape {shape} must be [C,H,W], [H,W] or [1,C,H,W]")
    if arr.shape[0] != c:
        raise InvalidInputError(f"tensor has {arr.shape[0]} channels (shape {shape}); the model expects {c}")
    t = torch.from_numpy(np.array(arr, dtype=np.float32 if arr.dtype != np.uint8 else np.uint8))
    if t.dtype == torch.uint8:
        if normalized:
            raise InvalidInputError("a normalized tensor must be floating point, not uint8")
        t = t.float() / 255.0
    if not torch.isfinite(t).all():
        bad = int((~torch.isfinite(t)).sum())
        raise InvalidInputError(f"tensor has {bad} NaN or infinite value{'s' if bad > 1 else ''}")
    if normalized:
        if list(t.shape) != list(card.input_shape):
            raise InvalidInputError(
                f"a normalized tensor must have the model's input shape {card.input_shape}, "
                f"not {list(t.shape)}"
            )
        return t
    h, w = card.input_shape[1], card.input_shape[2]
    if tuple(t.shape[1:]) != (h, w):
        t = torch.nn.functional.interpolate(
            t[None], size=(h, w), mode="bilinear", align_corners=False, antialias=True
        )[0]
    return t


@functools.lru_cache(maxsize=64)
def _mean_std(
    mean: tuple[float, ...], std: tuple[float, ...], dtype: torch.dtype
) -> tuple[torch.Tensor, torch.Tensor]:
    """The card's mean and std as [C,1,1] tensors, built once per (mean, std, dtype): building them
    per request was 1.6 % of a served worker's samples under load. Only ever read, never written."""
    return torch.tensor(mean, dtype=dtype).view(-1, 1, 1), torch.tensor(std, dtype=dtype).view(-1, 1, 1)


def normalise(pixels: torch.Tensor, card: ModelCard) -> torch.Tensor:
    mean, std = _mean_std(tuple(card.mean), tuple(card.std), pixels.dtype)
    return (pixels - mean) / std


def denormalise(x: torch.Tensor, card: ModelCard) -> torch.Tensor:
    mean, std = _mean_std(tuple(card.mean), tuple(card.std), x.dtype)
    return (x * std + mean).clamp(0, 1)


def decode_input(inp: pb.Input, card: ModelCard, limits: Limits | None = None) -> DecodedInput:
    """Validate ``inp`` and return the model input (resized, normalised) and its display pixels."""
    limits = limits or Limits()
    which = inp.WhichOneof("data")
    if which == "encoded":
        pixels = _decode_image(inp.encoded, card, limits)
        return DecodedInput(normalise(pixels, card), pixels)
    if which == "tensor":
        t = _tensor_input(inp.tensor, card, limits, inp.normalized)
        if inp.normalized:
            return DecodedInput(t, denormalise(t, card))
        x = normalise(t, card)
        if not torch.isfinite(x).all():  # finite values near the float32 limit overflow here
            raise InvalidInputError("tensor values overflow float32 when normalised; send pixels in 0..1")
        return DecodedInput(x, t.clamp(0, 1))
    raise InvalidInputError("empty request: the input has neither an encoded image nor a tensor")
