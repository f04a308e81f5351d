"""Vision transformers (Dosovitskiy et al., ICLR 2021) in torchvision's layout, for any channel count.

``vit``: torchvision's ``VisionTransformer`` (class token, learned position embedding, pre-norm blocks
of ``ln_1`` -> ``nn.MultiheadAttention`` -> residual -> ``ln_2`` -> MLP with GELU -> residual, final
LayerNorm, linear head on the class token) whose patch embedding takes ``in_chans`` channels; the
defaults are the digits ViT of the zoo (28x28 grey digits, patch 7: a 4x4 grid; 4 blocks, dim 64,
4 heads, MLP 128). Module names are torchvision's (``encoder.layers.encoder_layer_3.ln_1``), so every
method that knows torchvision's ViT knows it. torchvision zero-initialises the head; here it gets a small
random initialisation so a freshly built model's explanations are not all zero.
"""

from __future__ import annotations

from collections.abc import Sequence

from torch import nn

from xai_serve.errors import InvalidParameterError
from xai_serve.models.registry import register_model


@register_model("vit")
def vit(
    input_shape: Sequence[int] | None = None,
    in_chans: int = 1,
    image_size: int | None = None,
    patch_size: int = 7,
    num_layers: int = 4,
    num_heads: int = 4,
    hidden_dim: int = 64,
    mlp_dim: int = 128,
    num_classes: int = 10,
    dropout: float = 0.0,
) -> nn.Module:
    """A ViT on ``input_shape`` ([C, H, W], square) or ``image_size``; see the module docstring."""
    from torchvision.models import VisionTransformer

    if input_shape is not None:
        in_chans = int(input_shape[0])
        if int(input_shape[1]) != int(input_shape[2]):
            raise InvalidParameterError(f"vit needs a square input, got {list(input_shape)}")
        image_size = int(input_shape[1])
    if image_size is None:
        image_size = 28
    if image_size % patch_size:
        raise InvalidParameterError(f"vit: image size {image_size} is not a multiple of patch {patch_size}")
    model = VisionTransformer(
        image_size=image_size,
        patch_size=patch_size,
        num_layers=num_layers,
        num_heads=num_heads,
        hidden_dim=hidden_dim,
        mlp_dim=mlp_dim,
        num_classes=num_classes,
        dropout=dropout,
    )
    model.conv_proj = nn.Conv2d(in_chans, hidden_dim, kernel_size=patch_size, stride=patch_size)
    nn.init.trunc_normal_(model.heads.head.weight, std=0.02)
    nn.init.trunc_normal_(model.class_token, std=0.02)
    return model
