"""Grad-CAM, guided Grad-CAM and layer guided backprop against Captum and pytorch-grad-cam (float64).

Tolerances (issue 3): Grad-CAM <= 1e-5 (of the max magnitude) against Captum ``LayerGradCam`` (+ its
``LayerAttribution.interpolate``) and against pytorch-grad-cam, whose maps are min-max normalised
float32 (cv2 resize), so ours are compared after the same normalisation.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from captum.attr import GuidedGradCam, LayerAttribution, LayerGradCam, NeuronGuidedBackprop
from pytorch_grad_cam import GradCAM
from pytorch_grad_cam.utils.model_targets import ClassifierOutputTarget

from xai_serve.errors import InvalidParameterError
from xai_serve.explain import create_explainer
from xai_serve.explain.backprop import BackpropRequest, run_backprop
from xai_serve.explain.gradcam import layer_cam

CASES = [
    ("simplenet", "features.25"),
    ("simplenet", None),
    ("resnet18", "layer4"),
    ("resnet18", None),
    ("cnn", "3"),
]


def _layer(model: torch.nn.Module, name: str | None, x: torch.Tensor) -> torch.nn.Module:
    """The module ``name`` or, for None, the documented default: the last module (in the order modules
    finish) called once whose output is larger than 1x1, found here from a forward pass on ``x``."""
    if name is None:
        finished: list[tuple[str, tuple[int, ...]]] = []

        def hook(n: str):
            return lambda _m, _i, out: finished.append((n, tuple(out.shape)))

        handles = [m.register_forward_hook(hook(n)) for n, m in model.named_modules() if n]
        with torch.no_grad():
            model(x[:1])
        for h in handles:
            h.remove()
        counts = {n: sum(1 for m, _ in finished if m == n) for n, _ in finished}
        spatial = [n for n, shp in finished if len(shp) == 4 and shp[2] * shp[3] > 1 and counts[n] == 1]
        name = spatial[-1]
    return model.get_submodule(name)


@pytest.mark.parametrize(("model_name", "layer"), CASES)
@pytest.mark.parametrize("relu", [True, False])
def test_gradcam_matches_captum(zoo, rel_diff, model_name: str, layer: str | None, relu: bool) -> None:
    model, x = zoo(model_name, batch=2)
    target = torch.tensor([2, 5])
    ours = create_explainer("gradcam", model, layer=layer, relu=relu)(x, target)
    captum = LayerGradCam(model, _layer(model, layer, x)).attribute(x, target=target, relu_attributions=relu)
    captum = LayerAttribution.interpolate(captum, tuple(x.shape[2:]), "bilinear")
    assert ours.shape == x.shape
    assert rel_diff(ours, captum.expand_as(x)) <= 1e-5


@pytest.mark.parametrize(("model_name", "layer"), CASES)
def test_gradcam_matches_pytorch_grad_cam(zoo, model_name: str, layer: str | None) -> None:
    model, x = zoo(model_name, batch=2)
    targets = [2, 5]
    explainer = create_explainer("gradcam", model, layer=layer)
    ours = explainer(x, targets)[:, :1]
    # pytorch-grad-cam min-max normalises (x - min) / (1e-7 + max - min) at layer resolution, resizes,
    # then normalises again; its 1e-7 matters for small maps, so apply the same steps to ours (the first
    # normalisation commutes with bilinear resizing, so it is applied to our upsampled map)
    name, module = explainer.choice.resolve(x)
    result = run_backprop(model, x, targets, BackpropRequest(layers={name: module}))
    raw = layer_cam(result.activations[name], result.layer_grads[name], relu=True).flatten(1)
    low = raw.min(1).values.view(-1, 1, 1, 1)
    once = (ours - low) / (1e-7 + raw.max(1).values.view(-1, 1, 1, 1) - low)
    flat = once.flatten(1) - once.flatten(1).min(1, keepdim=True).values
    normalised = (flat / (1e-7 + flat.max(1, keepdim=True).values)).view_as(ours)[:, 0]
    with GradCAM(model=model, target_layers=[_layer(model, layer, x)]) as cam:
        reference = cam(input_tensor=x, targets=[ClassifierOutputTarget(t) for t in targets])
    diff = np.abs(normalised.numpy() - reference).max()
    assert diff <= 1e-5


@pytest.mark.parametrize(("model_name", "layer"), [("simplenet", "features.25"), ("resnet18", "layer4")])
def test_guided_gradcam_matches_captum(zoo, rel_diff, model_name: str, layer: str) -> None:
    model, x = zoo(model_name, batch=2)
    target = torch.tensor([1, 4])
    ours = create_explainer("guided_gradcam", model, layer=layer, interpolation="nearest")(x, target)
    for m in model.modules():
        if isinstance(m, torch.nn.ReLU):
            m.inplace = False
    reference = GuidedGradCam(model, model.get_submodule(layer)).attribute(x.clone().requires_grad_(), target)
    assert rel_diff(ours, reference) <= 1e-6


@pytest.mark.parametrize(("layer", "filt"), [(6, 3), ("features.25", 10), (2, 0)])
def test_layer_guided_backprop_matches_captum(zoo, rel_diff, layer: int | str, filt: int) -> None:
    model, x = zoo("simplenet", batch=2)
    ours = create_explainer("layer_guided_backprop", model, layer=layer, filter=filt)(x)
    module = model.features[layer] if isinstance(layer, int) else model.get_submodule(layer)
    reference = NeuronGuidedBackprop(model, module).attribute(
        x.clone().requires_grad_(), neuron_selector=lambda out: out[:, filt].abs().sum((1, 2))
    )
    assert rel_diff(ours, reference) <= 1e-6


def test_layer_errors(zoo) -> None:
    model, x = zoo("simplenet", batch=1)
    with pytest.raises(InvalidParameterError, match="layer"):
        create_explainer("gradcam", model, layer="nope")
    with pytest.raises(InvalidParameterError, match="layer"):
        create_explainer("layer_guided_backprop", model, layer=999)
    with pytest.raises(InvalidParameterError, match="filter"):
        create_explainer("layer_guided_backprop", model, layer=0, filter=64)(x)


@pytest.mark.parametrize("method", ["gradcam", "guided_gradcam", "layer_guided_backprop"])
def test_default_layer_has_spatial_extent_and_is_reported(zoo, method: str) -> None:
    from xai_serve.explain import explain_detailed

    model, x = zoo("simplenet", batch=2)
    params = {"relu": False} if method == "gradcam" else {}  # random weights: a ReLU'd map may be all 0
    result = explain_detailed(model, x, {method: params}, [1, 3])[method]
    assert result.layer is not None
    assert result.layer == _default_name(model, x)
    assert result.layer.startswith("features.")  # SimpleNet: inside the feature stack, not the 1x1 end
    if method == "gradcam":
        per_sample = result.heatmap.flatten(1)
        assert bool((per_sample.max(1).values > per_sample.min(1).values).all())  # not a flat square


def _default_name(model: torch.nn.Module, x: torch.Tensor) -> str:
    module = _layer(model, None, x)
    return next(n for n, m in model.named_modules() if m is module)


# the input shape each registered model is trained on (a new model must be added here: the test fails)
MODEL_SHAPES: dict[str, tuple[int, ...] | None] = {
    "mlp": (1, 8, 8),
    "simplenet_310k": (1, 28, 28),
    "simplenet_5m": (3, 32, 32),
    "resnet20": (3, 32, 32),
    "resnet18": (3, 64, 64),  # trained at 224 (layer4 7x7); 64 keeps the test cheap (layer4 2x2)
    "resnet34": (3, 64, 64),
    "resnet50": (3, 64, 64),
    "resgptnet_small": (1, 28, 28),
    "resgptnet34": (1, 28, 28),
    "vit": (1, 28, 28),
    "decomposed": None,  # wraps a base model (one of the above): its layers are the base's
}


def test_default_layer_on_every_registered_model() -> None:
    """Every model of the registry at its input shape: the default layer of the layer methods is larger
    than 1x1 (a model without conv layers has none and says so) and Grad-CAM's map is not constant."""
    from xai_serve.explain.layers import spatial_layer
    from xai_serve.explain.tokens import contains_attention, token_layer
    from xai_serve.models import create_model, list_models

    torch.manual_seed(0)
    missing = sorted(set(list_models()) - set(MODEL_SHAPES))
    assert not missing, f"add the input shape of {missing} to MODEL_SHAPES"
    for name in list_models():
        shape = MODEL_SHAPES[name]
        if shape is None:
            continue
        kwargs = {"in_features": 64} if name == "mlp" else {}
        model = create_model(name, **kwargs).eval()
        if contains_attention(model):  # a token model: the last block's input norm (test_vit_methods.py)
            assert token_layer(model, shape) == "encoder.layers.encoder_layer_3.ln_1", name
            continue
        if not any(isinstance(m, torch.nn.Conv2d) for m in model.modules()):
            with pytest.raises(InvalidParameterError, match="larger than 1x1"):
                spatial_layer(model, shape)
            continue
        layer = spatial_layer(model, shape)
        x = torch.rand(1, *shape)
        seen: dict[str, torch.Tensor] = {}
        module = model.get_submodule(layer)
        handle = module.register_forward_hook(lambda _m, _i, o, s=seen: s.setdefault("o", o))
        with torch.no_grad():
            out = model(x)
        handle.remove()
        assert seen["o"].shape[2] * seen["o"].shape[3] > 1, (name, layer)
        assert layer == _default_name(model, x), name
        if isinstance(out, torch.Tensor):  # class-output models (several outputs: component targets)
            cam = create_explainer("gradcam", model, relu=False)(x, 0)
            assert float(cam.max() - cam.min()) > 0, (name, layer)
