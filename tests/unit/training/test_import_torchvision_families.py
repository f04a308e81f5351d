"""``xai import --arch`` across torchvision's families (the nine ResNet-type architectures the
Decomposing-the-Deep code lists are one family; VGG, DenseNet, MobileNet, EfficientNet, ConvNeXt and ViT
the others): random weights saved DataParallel-style, imported, loaded back equal, explained."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from xai_serve.explain import explain_detailed
from xai_serve.models import create_model, load_checkpoint
from xai_serve.training.importer import ImportSpec, import_weights

pytestmark = pytest.mark.slow

FAMILIES = {
    "resnext50_32x4d": 64,
    "wide_resnet50_2": 64,
    "vgg11_bn": 64,
    "densenet121": 64,
    "mobilenet_v2": 64,
    "efficientnet_b0": 64,
    "convnext_tiny": 64,
    "vit_b_16": 224,
}


@pytest.mark.parametrize("arch", list(FAMILIES))
def test_torchvision_family_round_trip(tmp_path: Path, arch: str) -> None:
    side = FAMILIES[arch]
    torch.manual_seed(0)
    source = create_model(f"torchvision.{arch}", num_classes=7).eval()
    torch.save({"state_dict": {f"module.{k}": v for k, v in source.state_dict().items()}}, tmp_path / "w.pth")
    import_weights(ImportSpec(tmp_path / "w.pth", tmp_path / "c", arch=arch, input_size=(3, side, side)))
    model, card = load_checkpoint(tmp_path / "c")
    assert card.model == f"torchvision.{arch}" and card.num_classes == 7
    x = torch.randn(1, 3, side, side)
    with torch.no_grad():
        assert torch.allclose(model(x), source(x), atol=1e-4)
    heat = explain_detailed(model, x, {"gradient": {}}, "predicted")["gradient"].heatmap
    assert heat.shape[-2:] == (side, side) and torch.isfinite(heat).all()
