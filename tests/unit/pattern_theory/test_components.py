"""Component targets (General Pattern Theory): every method that takes a target explains
``model(x)[k][:, c, i, j]``.

The references are autograd of that scalar (gradient, input x gradient, LRP-0 on a ReLU net) and
Captum on the original General Pattern Theory code's ``WrapperNet`` (a forward returning
``out[k][:, :, i, j]``, target = channel): GuidedBackprop, Deconvolution, LayerGradCam at the 1x1 input
adapter and at a deep layer. Float64.
"""

from __future__ import annotations

import pytest
import torch
from torch import nn

from xai_serve.errors import InvalidTargetError
from xai_serve.explain import Component, explain, explain_detailed
from xai_serve.models import create_model

ATOL = 1e-10


def _model() -> tuple[nn.Module, torch.Tensor]:
    torch.manual_seed(0)
    model = create_model("resgptnet_small", width=8).double()
    gen = torch.Generator().manual_seed(1)
    for m in model.modules():
        if isinstance(m, nn.BatchNorm2d):
            with torch.no_grad():
                m.running_mean.copy_(torch.rand(m.num_features, generator=gen) * 0.2 - 0.1)
                m.running_var.copy_(torch.rand(m.num_features, generator=gen) + 0.5)
    x = torch.rand(2, 1, 28, 28, generator=gen, dtype=torch.float64)
    return model.eval(), x


class Pixel(nn.Module):
    """The original code's WrapperNet: output ``k`` at pixel (i, j), shape (B, C)."""

    def __init__(self, model: nn.Module, k: int, i: int, j: int) -> None:
        super().__init__()
        self.model, self.k, self.i, self.j = model, k, i, j

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model(x)[self.k][:, :, self.i, self.j]


def _autograd(model: nn.Module, x: torch.Tensor, k: int, c: torch.Tensor, i: int, j: int) -> torch.Tensor:
    xin = x.clone().requires_grad_(True)
    out = model(xin)[k][:, :, i, j]
    score = out.gather(1, c[:, None]).sum()
    (grad,) = torch.autograd.grad(score, xin)
    return grad


@pytest.mark.parametrize("output,k,channel", [("yg", 1, "predicted"), ("ys", 2, 5), ("y", 0, None)])
def test_gradient_family_equals_autograd(output: str, k: int, channel: object) -> None:
    model, x = _model()
    i, j = 14, 9
    with torch.no_grad():
        out = model(x)
    if output == "y":
        target: object = 3
        c = torch.tensor([3, 3])
        ref_in = x.clone().requires_grad_(True)
        (grad,) = torch.autograd.grad(model(ref_in)[0][:, 3].sum(), ref_in)
    else:
        target = Component(output, i, j, channel)  # type: ignore[arg-type]
        c = out[k][:, :, i, j].argmax(1) if channel == "predicted" else torch.tensor([channel] * 2)
        grad = _autograd(model, x, k, c, i, j)
    res = explain_detailed(model, x, ["gradient", "input_x_gradient"], target)  # type: ignore[arg-type]
    assert torch.allclose(res["gradient"].heatmap, grad, atol=ATOL, rtol=0)
    assert torch.allclose(res["input_x_gradient"].heatmap, x * grad, atol=ATOL, rtol=0)
    assert res["gradient"].classes == c.tolist()
    assert res["gradient"].logits.shape == (2, 10)  # the classifier output of the shared pass
    if output != "y":
        expected = out[k][:, :, i, j].gather(1, c[:, None])[:, 0]
        assert res["gradient"].stats["target_score"] == pytest.approx(expected.tolist())


def test_guided_deconv_gradcam_equal_captum_on_the_pixel_wrapper() -> None:
    from captum.attr import Deconvolution, GuidedBackprop, LayerAttribution, LayerGradCam

    model, x = _model()
    i, j = 10, 17
    with torch.no_grad():
        c = model(x)[1][:, :, i, j].argmax(1)
    target = Component("yg", i, j, "predicted")
    methods = {
        "guided_backprop": {},
        "deconvnet": {},
        "gradcam": {"layer": "channel_adj", "relu": False},
    }
    ours = explain(model, x, methods, target)
    wrapper = Pixel(model, 1, i, j).eval()
    ref_gbp = GuidedBackprop(wrapper).attribute(x.clone(), target=c)
    ref_dec = Deconvolution(wrapper).attribute(x.clone(), target=c)
    ref_cam = LayerGradCam(wrapper, model.channel_adj).attribute(x.clone(), target=c)
    assert torch.allclose(ours["guided_backprop"], ref_gbp, atol=ATOL, rtol=0)
    assert torch.allclose(ours["deconvnet"], ref_dec, atol=ATOL, rtol=0)
    assert torch.allclose(ours["gradcam"], ref_cam, atol=ATOL, rtol=0)
    # a deep layer (7x7), upsampled bilinearly like Captum's LayerAttribution.interpolate
    deep = explain(model, x, {"gradcam": {"layer": "backbone.layer1", "relu": True}}, target)["gradcam"]
    cam = LayerGradCam(wrapper, model.backbone.layer1).attribute(x.clone(), target=c, relu_attributions=True)
    ref_deep = LayerAttribution.interpolate(cam, (28, 28), "bilinear")
    assert torch.allclose(deep, ref_deep, atol=ATOL, rtol=0)


class TwoHeads(nn.Module):
    """A conv ReLU net with a classifier and a per-pixel map (LRP has a rule for every layer)."""

    output_names = ("y", "seg")

    def __init__(self) -> None:
        super().__init__()
        self.c1 = nn.Conv2d(1, 4, 3, padding=1)
        self.r1 = nn.ReLU()
        self.seg = nn.Conv2d(4, 3, 3, padding=1)
        self.flat = nn.Flatten()
        self.fc = nn.Linear(4 * 6 * 6, 5)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        a = self.r1(self.c1(x))
        return self.fc(self.flat(a)), self.seg(a)


def test_lrp0_on_a_component_equals_input_times_gradient() -> None:
    torch.manual_seed(0)
    model = TwoHeads().double().eval()
    x = torch.rand(3, 1, 6, 6, dtype=torch.float64)
    target = Component("seg", 2, 4, 1)
    heat = explain(model, x, {"lrp": {"composite": "lrp0", "epsilon": 0.0}}, target)["lrp"]
    grad = _autograd(model, x, 1, torch.tensor([1, 1, 1]), 2, 4)
    # LRP-0 with biases: relevance = x * grad at the input (biases absorb the rest)
    assert torch.allclose(heat, x * grad, atol=1e-10, rtol=0)
    # class targets still address the first output
    heat_y = explain(model, x, {"lrp": {"composite": "lrp0", "epsilon": 0.0}}, 2)["lrp"]
    xin = x.clone().requires_grad_(True)
    (g,) = torch.autograd.grad(model(xin)[0][:, 2].sum(), xin)
    assert torch.allclose(heat_y, x * g, atol=1e-10, rtol=0)


@pytest.mark.parametrize(
    "target,match",
    [
        (Component("yq", 1, 1, 0), "unknown output"),
        (Component("yg", 28, 1, 0), "row 28 is out of range"),
        (Component("yg", 0, -1, 0), "col -1 is out of range"),
        (Component("yg", 0, 0, 4), "channel 4 is out of range"),
        (Component("ys", 0, 0, "largest"), "channel"),
        (Component("y", 0, 0, 0), "needs a"),
        ([Component("yg", 0, 0, 0)], "1 component targets for a batch of 2"),
    ],
)
def test_bad_component_targets_are_typed_errors(target: object, match: str) -> None:
    model, x = _model()
    with pytest.raises(InvalidTargetError, match=match):
        explain(model, x, ["gradient"], target)  # type: ignore[arg-type]
