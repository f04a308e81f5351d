"""Checking an uploaded image: its size, and that it decodes as an image (by its bytes, never its name)."""

from __future__ import annotations

import io

import numpy as np
from PIL import Image, UnidentifiedImageError
from xai_client.errors import InvalidArgument

MAX_UPLOAD_BYTES = 4 * 1024 * 1024
MAX_PIXELS = 4096 * 4096
FORMATS = ("PNG", "JPEG", "GIF", "BMP", "WEBP", "TIFF")


class BadUpload(InvalidArgument):
    """An upload that is not an image the console accepts (the message says why; the API answers 4xx)."""


class UploadTooLarge(BadUpload):
    """An upload over the size limit (HTTP 413)."""


def decode_upload(data: bytes, *, limit: int = MAX_UPLOAD_BYTES) -> np.ndarray:
    """The RGB pixels (uint8 [H, W, 3]) of an uploaded image; raises :class:`BadUpload` for an empty file,
    one over ``limit`` bytes, one Pillow cannot decode, a format outside :data:`FORMATS` or more than
    :data:`MAX_PIXELS` pixels (checked from the header, before the pixels are decoded)."""
    if not data:
        raise BadUpload("the upload is empty: choose an image file")
    if len(data) > limit:
        raise UploadTooLarge(f"the upload has {len(data)} bytes; the limit is {limit} bytes")
    try:
        with Image.open(io.BytesIO(data)) as img:
            if img.format not in FORMATS:
                raise BadUpload(f"{img.format} images are not accepted; use one of {', '.join(FORMATS)}")
            if img.width * img.height > MAX_PIXELS:
                raise BadUpload(f"the image has {img.width}x{img.height} pixels; the limit is {MAX_PIXELS}")
            return np.asarray(img.convert("RGB"))
    except BadUpload:
        raise
    except (UnidentifiedImageError, OSError, ValueError, Image.DecompressionBombError, SyntaxError):
        raise BadUpload(
            "the file is not an image this console can read (PNG, JPEG, GIF, BMP, WebP, TIFF)"
        ) from None
