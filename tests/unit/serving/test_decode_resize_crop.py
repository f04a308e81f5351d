"""A card's ``resize`` (``xai import --normalize imagenet``): the server's decoder applies ImageNet's
evaluation transform, the same pixels as torchvision's ``Resize(256)`` + ``CenterCrop(224)``."""

from __future__ import annotations

import io

import numpy as np
import pytest
import torch
from PIL import Image
from torchvision import transforms
from xai_client.api.v1 import explain_pb2 as pb

from xai_serve.models import ModelCard
from xai_serve.serving.inputs import decode_input


def _card(resize: int) -> ModelCard:
    return ModelCard(
        "resnet18", {}, "imagefolder", [3, 224, 224], [0.0] * 3, [1.0] * 3, ["a", "b"], resize=resize
    )


@pytest.mark.parametrize("size", [(320, 240), (240, 400), (256, 256)])
def test_decoder_resize_and_centre_crop_equal_torchvision(size: tuple[int, int]) -> None:
    rng = np.random.default_rng(0)
    img = Image.fromarray(rng.integers(0, 256, (size[1], size[0], 3), dtype=np.uint8))
    buf = io.BytesIO()
    img.save(buf, format="PNG")
    decoded = decode_input(pb.Input(encoded=buf.getvalue()), _card(256))
    expected = transforms.Compose(
        [transforms.Resize(256), transforms.CenterCrop(224), transforms.ToTensor()]
    )(img)
    assert decoded.pixels.shape[-3:] == (3, 224, 224)
    assert torch.allclose(decoded.pixels.reshape(expected.shape), expected, atol=1 / 255 + 1e-6)


def test_without_resize_the_image_is_scaled_to_the_input_size() -> None:
    img = Image.new("RGB", (320, 240), (255, 0, 0))
    buf = io.BytesIO()
    img.save(buf, format="PNG")
    decoded = decode_input(pb.Input(encoded=buf.getvalue()), _card(0))
    assert decoded.pixels.shape[-2:] == (224, 224)
