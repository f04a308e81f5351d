"""The layer and gradient methods on vision transformers: Grad-CAM on tokens (default layer, reshape,
parity with pytorch-grad-cam's recipe), typed refusals of the ReLU-only methods, the shared pass and the
thread policy's cost probe."""

from __future__ import annotations

import pytest
import torch
import torchvision
from torch import nn

from xai_serve.errors import InvalidParameterError, UnsupportedOperationError
from xai_serve.explain import create_explainer, explain_detailed, model_hooks
from xai_serve.explain.tokens import token_grid, token_layer
from xai_serve.serving.threads import forward_macs


def small_vit(seed: int = 0) -> nn.Module:
    torch.manual_seed(seed)
    model = torchvision.models.VisionTransformer(
        image_size=32, patch_size=8, num_layers=2, num_heads=4, hidden_dim=32, mlp_dim=64, num_classes=10
    ).eval()
    nn.init.normal_(model.heads.head.weight, std=0.3)  # torchvision zero-initialises the head
    return model


def test_default_layer_of_a_token_model_is_the_last_blocks_input_norm() -> None:
    model = small_vit()
    assert token_layer(model, (3, 32, 32)) == "encoder.layers.encoder_layer_1.ln_1"
    x = torch.randn(2, 3, 32, 32)
    cam = explain_detailed(model, x, {"gradcam": {}}, 3)["gradcam"]
    assert cam.layer == "encoder.layers.encoder_layer_1.ln_1 (tokens: 1 dropped, 4x4 grid)"
    assert cam.heatmap.shape == x.shape and float(cam.heatmap.abs().max()) > 0
    # any block answers; the last block's output would be all zero (only the class token reaches the head)
    other = explain_detailed(model, x, {"gradcam": {"layer": "encoder.layers.encoder_layer_0"}}, 3)["gradcam"]
    assert other.layer == "encoder.layers.encoder_layer_0 (tokens: 1 dropped, 4x4 grid)"
    assert float(other.heatmap.abs().max()) > 0
    last = explain_detailed(model, x, {"gradcam": {"layer": "encoder.layers.encoder_layer_1"}}, 3)["gradcam"]
    assert float(last.heatmap.abs().max()) == 0.0
    assert model_hooks(model) == []


def test_post_norm_encoder_default_layer_is_the_previous_block() -> None:
    layer = nn.TransformerEncoderLayer(8, 2, 16, dropout=0.0, batch_first=True)  # post-norm
    model = nn.Sequential(nn.Identity(), nn.TransformerEncoder(layer, 2, enable_nested_tensor=False))
    assert token_layer(model, (5, 8)) == "1.layers.0"


def test_token_grid() -> None:
    grid = token_grid(torch.zeros(1, 197, 4), (1, 3, 224, 224))
    assert (grid.extra, grid.h, grid.w) == (1, 14, 14)
    grid = token_grid(torch.zeros(1, 2 + 8 * 4, 4), (1, 3, 64, 32))
    assert (grid.extra, grid.h, grid.w) == (2, 8, 4)
    with pytest.raises(InvalidParameterError, match="patch grid"):
        token_grid(torch.zeros(1, 300, 4), (1, 3, 224, 224))


def test_gradcam_matches_pytorch_grad_cam_on_vit_b_16() -> None:
    """pytorch-grad-cam's ViT recipe (reshape_transform dropping the class token, target the last
    block's ln_1) on torchvision's vit_b_16 with random weights and a re-initialised head; grad-cam
    min-max normalises each map, so ours is compared normalised."""
    from pytorch_grad_cam import GradCAM
    from pytorch_grad_cam.utils.model_targets import ClassifierOutputTarget

    torch.manual_seed(0)
    model = torchvision.models.vit_b_16(weights=None).eval()
    nn.init.normal_(model.heads.head.weight, std=0.02)
    x = torch.randn(2, 3, 224, 224)
    targets = [3, 5]
    mine = explain_detailed(model, x, {"gradcam": {}}, targets)["gradcam"]
    assert mine.layer == "encoder.layers.encoder_layer_11.ln_1 (tokens: 1 dropped, 14x14 grid)"

    def reshape(t: torch.Tensor) -> torch.Tensor:
        return t[:, 1:, :].reshape(t.size(0), 14, 14, t.size(2)).transpose(2, 3).transpose(1, 2)

    with GradCAM(
        model=model, target_layers=[model.encoder.layers[-1].ln_1], reshape_transform=reshape
    ) as cam:
        ref = cam(input_tensor=x, targets=[ClassifierOutputTarget(t) for t in targets])
    ours = mine.heatmap[:, 0].double()
    flat = ours.flatten(1)
    low = flat.min(1).values[:, None, None]
    ours = ours - low
    ours = ours / (1e-7 + ours.flatten(1).max(1).values[:, None, None])
    # float32 end to end over 12 blocks (grad-cam resizes in float32): 1e-4 of the [0, 1] range
    assert float((ours - torch.from_numpy(ref).double()).abs().max()) < 1e-4


@pytest.mark.parametrize(
    "method", ["guided_backprop", "deconvnet", "guided_gradcam", "layer_guided_backprop"]
)
def test_relu_methods_refuse_a_gelu_model_naming_the_activation(method: str) -> None:
    model = small_vit()
    x = torch.randn(1, 3, 32, 32)
    with pytest.raises(
        UnsupportedOperationError, match=r"GELU at 'encoder\.layers\.encoder_layer_0\.mlp\.1'"
    ):
        create_explainer(method, model)(x, 0)
    assert model_hooks(model) == []


class FunctionalGelu(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.a, self.b = nn.Linear(4, 4), nn.Linear(4, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.b(torch.nn.functional.gelu(self.a(x)))


def test_relu_methods_refuse_a_functional_gelu() -> None:
    with pytest.raises(UnsupportedOperationError, match="gelu"):
        create_explainer("guided_backprop", FunctionalGelu().eval())(torch.randn(2, 4), 0)


def test_gradient_methods_share_one_pass_on_a_vit() -> None:
    model = small_vit()
    x = torch.randn(2, 3, 32, 32, dtype=torch.float32)
    methods = {"gradient": {}, "gradcam": {}, "lrp": {}, "input_x_gradient": {}}
    together = explain_detailed(model, x, methods, 3)
    for name in methods:
        alone = explain_detailed(model, x, {name: methods[name]}, 3)[name]
        torch.testing.assert_close(together[name].heatmap, alone.heatmap, rtol=1e-5, atol=1e-6)


def test_forward_macs_counts_attention() -> None:
    """The thread policy's probe counts nn.MultiheadAttention's projections and products (its out_proj
    is never called as a module)."""
    model = small_vit()
    tokens, dim, mlp, layers = 17, 32, 64, 2
    conv = 16 * 32 * 3 * 8 * 8
    per_block = (
        tokens * dim * 3 * dim + tokens * dim * dim + 2 * tokens * tokens * dim + 2 * tokens * dim * mlp
    )
    assert forward_macs(model, (3, 32, 32)) == conv + layers * per_block + dim * 10


def test_filter_image_on_a_token_layer_maximises_a_channel() -> None:
    model = small_vit()
    x = torch.zeros(1, 3, 32, 32)
    out = create_explainer("filter_image", model, filter=40, iterations=2)
    with pytest.raises(InvalidParameterError, match="out of range for 32 channels"):
        out(x, 0)
    result = create_explainer("filter_image", model, filter=5, iterations=2).attribute(x, 0)
    assert result.layer == "encoder.layers.encoder_layer_1.ln_1" and result.heatmap.shape == x.shape


def test_decomposed_refuses_a_token_layer_by_type() -> None:
    from xai_serve.errors import UnsupportedLayerError

    with pytest.raises(UnsupportedLayerError, match=r"not \(B, C, H, W\)"):
        explain_detailed(small_vit(), torch.zeros(1, 3, 32, 32), {"decomposed": {}}, 0)
