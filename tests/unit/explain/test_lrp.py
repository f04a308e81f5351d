"""LRP rules and composites against Zennit 0.5.1, closed forms and conservation (float64).

Tolerances (issue 3): every composite / rule vs Zennit <= 1e-5 of the max |relevance| (observed
~1e-14); LRP-0 == input x gradient <= 1e-6; on bias-free ReLU nets sum(R) == target logit within
1e-6 relative for LRP-0, gamma, alpha-beta, z+, z^B, w^2, flat.

Zennit 0.5.1's BatchNorm merge leaves ``eps`` in the "identity" BatchNorm (x / sqrt(1 + eps)), a known
bug fixed in Zennit 1.0; the parity models therefore use ``eps = 0``. Our merge with the default eps
is checked separately (the LRP pass reproduces the model's logits).
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn
from zennit.attribution import Gradient
from zennit.canonizers import SequentialMergeBatchNorm
from zennit.composites import (
    EpsilonAlpha2Beta1,
    EpsilonGammaBox,
    EpsilonPlusFlat,
    LayerMapComposite,
    SpecialFirstLayerMapComposite,
    layer_map_base,
)
from zennit.rules import AlphaBeta, Epsilon, Flat, Gamma, WSquare, ZBox, ZPlus
from zennit.torchvision import ResNetCanonizer
from zennit.types import Linear

from xai_serve.errors import InvalidParameterError, UnsupportedLayerError
from xai_serve.explain import ModelContext, create_explainer, model_hooks
from xai_serve.models import canonicalise

MEAN, STD = [0.2], [0.5]
CONTEXT = ModelContext(tuple(MEAN), tuple(STD))
LOW, HIGH = (0 - 0.2) / 0.5, (1 - 0.2) / 0.5
# zennit turns float bounds into float32 tensors (-0.4 -> -0.40000000596): give it exact float64 ones
Z_LOW, Z_HIGH = torch.tensor(LOW, dtype=torch.float64), torch.tensor(HIGH, dtype=torch.float64)
PARITY = 1e-5


def _canonizers(model_name: str) -> list:
    if model_name.startswith("resnet18"):
        return [ResNetCanonizer()]
    return {"simplenet": [SequentialMergeBatchNorm()]}.get(model_name, [])


def _uniform(rule):
    return lambda canonizers: LayerMapComposite(
        layer_map=[*layer_map_base(), (Linear, rule)], canonizers=canonizers
    )


ZENNIT = {
    "epsilon_plus_flat": lambda c: EpsilonPlusFlat(canonizers=c),
    "epsilon_gamma_box": lambda c: EpsilonGammaBox(low=Z_LOW, high=Z_HIGH, canonizers=c),
    "epsilon_alpha2_beta1": lambda c: EpsilonAlpha2Beta1(canonizers=c),
    "lrp0": _uniform(Epsilon(0.0)),
    "epsilon": _uniform(Epsilon(1e-6)),
    "gamma": _uniform(Gamma(0.25)),
    "alpha_beta": _uniform(AlphaBeta(2.0, 1.0)),
    "zplus": _uniform(ZPlus()),
}
FIRST = {"zbox": ZBox(Z_LOW, Z_HIGH), "wsquare": WSquare(), "flat": Flat()}


def _exact_bn(model: nn.Module) -> nn.Module:
    for m in model.modules():
        if isinstance(m, nn.BatchNorm2d):
            m.eps = 0.0
    return model


def _zennit(model: nn.Module, x: torch.Tensor, target: torch.Tensor, composite) -> torch.Tensor:
    with torch.no_grad():
        logits = model(x)
    onehot = torch.zeros_like(logits).scatter_(1, target[:, None], 1.0)
    with Gradient(model=model, composite=composite) as attributor:
        _, relevance = attributor(x, onehot * logits)
    return relevance


# the ResNet runs the mixed composites (they use every rule: flat, z+, z^B, gamma, alpha-beta, epsilon)
CASES = [(m, c) for m in ("mlp", "simplenet") for c in ZENNIT] + [
    ("resnet18_32", c) for c in ("epsilon_plus_flat", "epsilon_gamma_box", "epsilon_alpha2_beta1", "epsilon")
]


@pytest.mark.parametrize(("model_name", "composite"), CASES)
def test_composite_matches_zennit(zoo, rel_diff, model_name: str, composite: str) -> None:
    model, x = zoo(model_name, batch=2)
    _exact_bn(model)
    target = torch.tensor([1, 6])
    ours = create_explainer("lrp", model, composite=composite, context=CONTEXT).attribute(x, target)
    reference = _zennit(model, x, target, ZENNIT[composite](_canonizers(model_name)))
    assert rel_diff(ours.heatmap, reference) <= PARITY
    assert model_hooks(model) == []


@pytest.mark.parametrize("model_name", ["cnn", "simplenet"])
@pytest.mark.parametrize("first", list(FIRST))
def test_first_layer_rules_match_zennit(zoo, rel_diff, model_name: str, first: str) -> None:
    model, x = zoo(model_name, batch=2)
    _exact_bn(model)
    target = torch.tensor([0, 9])
    ours = create_explainer("lrp", model, composite="epsilon", first_rule=first, context=CONTEXT)(x, target)
    composite = SpecialFirstLayerMapComposite(
        layer_map=[*layer_map_base(), (Linear, Epsilon(1e-06))],
        first_map=[(Linear, FIRST[first])],
        canonizers=_canonizers(model_name),
    )
    assert rel_diff(ours, _zennit(model, x, target, composite)) <= PARITY


@pytest.mark.parametrize("model_name", ["cnn", "simplenet"])
def test_lrp0_equals_input_x_gradient(zoo, rel_diff, model_name: str) -> None:
    model, x = zoo(model_name, batch=3)
    lrp = create_explainer("lrp", model, composite="lrp0")(x, "predicted")
    ixg = create_explainer("input_x_gradient", model)(x, "predicted")
    assert rel_diff(lrp, ixg) <= 1e-6


# alpha-beta conserves only where each unit has contributions of both signs; the 3x3 border units of
# cnn_nobias on one input channel often do not (the rule's property, Zennit alike): MLP only
@pytest.mark.parametrize(
    ("model_name", "composite", "first"),
    [("mlp_nobias", "alpha_beta", "auto")]
    + [
        (model_name, composite, first)
        for model_name in ("mlp_nobias", "cnn_nobias")
        for composite, first in [
            ("lrp0", "auto"),
            ("gamma", "auto"),
            ("zplus", "auto"),
            ("zplus", "zbox"),
            ("gamma", "wsquare"),
            ("lrp0", "flat"),
            ("epsilon_plus_flat", "auto"),
        ]
    ],
)
def test_conservation_without_biases(zoo, model_name: str, composite: str, first: str) -> None:
    model, x = zoo(model_name, batch=4)
    result = create_explainer(
        "lrp", model, composite=composite, first_rule=first, epsilon=0.0, stabilizer=1e-12, context=CONTEXT
    ).attribute(x, "predicted")
    total = result.heatmap.flatten(1).sum(1)
    logits = model(x).detach().max(1).values
    assert torch.allclose(total, logits, rtol=1e-6, atol=0)
    assert np.allclose(result.stats["conservation"], 1.0, rtol=1e-6, atol=0)
    assert np.allclose(result.stats["bias_absorbed"], 0.0, atol=1e-6 * float(logits.abs().max()))


def _tutorial_reference(model: nn.Sequential, x: torch.Tensor, target: int) -> np.ndarray:
    """numpy version of the heatmapping.org MLP tutorial (rho / incr per layer, z^B pixels)."""
    weights = [
        (m.weight.detach().numpy().T, m.bias.detach().numpy()) for m in model if isinstance(m, nn.Linear)
    ]
    acts = [x.flatten(1).numpy()]
    for i, (w, b) in enumerate(weights):
        z = acts[-1] @ w + b
        acts.append(np.maximum(z, 0) if i < len(weights) - 1 else z)
    relevance = acts[-1] * (np.arange(acts[-1].shape[1]) == target)

    def stab(z: np.ndarray, eps: np.ndarray | float) -> np.ndarray:
        return z + eps * np.where(z >= 0, 1.0, -1.0)

    for layer in range(len(weights) - 1, 0, -1):
        w, b = weights[layer]
        a = acts[layer]
        if layer == 1:  # gamma = 0.1 on weights and bias
            w, b = w + 0.1 * np.maximum(w, 0), b + 0.1 * np.maximum(b, 0)
        z = a @ w + b
        if layer == len(weights) - 1:
            z = stab(z, 0.0)
        elif layer == 1:
            z = stab(z, 1e-6)
        else:  # epsilon = 0.1 * RMS(z) per sample
            z = stab(z, 0.1 * np.sqrt((z**2).mean(1, keepdims=True)))
        relevance = a * ((relevance / z) @ w.T)
    w, _ = weights[0]
    a = acts[0]
    low, high = np.full_like(a, LOW), np.full_like(a, HIGH)
    wp, wn = np.maximum(w, 0), np.minimum(w, 0)
    z = stab(a @ w - low @ wp - high @ wn, 1e-6)
    s = relevance / z
    return (a * (s @ w.T) - low * (s @ wp.T) - high * (s @ wn.T)).reshape(x.shape)


def test_tutorial_mlp_matches_numpy_reference(rel_diff) -> None:
    torch.manual_seed(0)
    model = (
        nn.Sequential(
            nn.Flatten(),
            nn.Linear(64, 32),
            nn.ReLU(),
            nn.Linear(32, 16),
            nn.ReLU(),
            nn.Linear(16, 16),
            nn.ReLU(),
            nn.Linear(16, 10),
        )
        .double()
        .eval()
    )
    x = torch.randn(3, 1, 8, 8, dtype=torch.float64)
    ours = create_explainer("lrp", model, composite="tutorial_mlp", context=CONTEXT)(x, 4)
    reference = _tutorial_reference(model, x, 4)
    assert rel_diff(ours, torch.from_numpy(reference)) <= 1e-10


@pytest.mark.parametrize("model_name", ["simplenet", "resnet18"])
def test_batchnorm_merge_reproduces_logits(zoo, model_name: str) -> None:
    model, x = zoo(model_name, batch=2)  # default BatchNorm eps
    result = create_explainer("lrp", model).attribute(x, "predicted")
    with torch.no_grad():
        logits = model(x)
    assert result.logits is not None
    assert torch.allclose(result.logits, logits, rtol=1e-10, atol=1e-10)
    assert result.classes == logits.argmax(1).tolist()
    assert set(result.stats) == {"relevance_sum", "target_score", "conservation", "bias_absorbed"}
    assert np.allclose(result.stats["target_score"], logits.max(1).values.numpy(), rtol=1e-10)
    assert np.allclose(
        np.array(result.stats["relevance_sum"]) / result.stats["target_score"], result.stats["conservation"]
    )


def test_canonical_resnet_gives_the_same_map(zoo, rel_diff) -> None:
    """torchvision's ResNet (in-place ReLU reused, ``out += identity``) and the same weights after
    xai_serve.models.canonicalise (distinct ReLUs, ``Sum`` module) give the same relevance."""
    model, x = zoo("resnet18", batch=2)
    raw = create_explainer("lrp", model)(x, 3)
    canon = create_explainer("lrp", canonicalise(model))(x, 3)
    assert rel_diff(canon, raw) <= 1e-12


@pytest.mark.parametrize("layer", [nn.LayerNorm([6, 8, 8]), nn.Upsample(scale_factor=1)])
def test_unsupported_layer_is_named(layer: nn.Module) -> None:
    model = nn.Sequential(nn.Conv2d(1, 6, 3, padding=1), layer, nn.ReLU(), nn.Flatten(), nn.Linear(384, 10))
    x = torch.randn(2, 1, 8, 8)
    before = model(x)
    with pytest.raises(UnsupportedLayerError, match="'1'"):
        create_explainer("lrp", model)(x, 0)
    assert model_hooks(model) == []
    assert torch.equal(model(x), before)


def test_alpha_beta_must_differ_by_one(zoo) -> None:
    model, _ = zoo("cnn")
    with pytest.raises(InvalidParameterError, match="alpha"):
        create_explainer("lrp", model, composite="alpha_beta", alpha=3.0, beta=1.0)


def test_bottleneck_resnet_matches_zennit(zoo, rel_diff) -> None:
    model, x = zoo("bottleneck", batch=2)
    _exact_bn(model)
    target = torch.tensor([2, 8])
    ours = create_explainer("lrp", model, composite="epsilon_gamma_box", context=CONTEXT)(x, target)
    reference = _zennit(model, x, target, ZENNIT["epsilon_gamma_box"]([ResNetCanonizer()]))
    assert rel_diff(ours, reference) <= PARITY


def test_resnet20_matches_zennit(zoo, rel_diff) -> None:
    """xai_serve's ResNet-20: BatchNorms outside Sequentials, ``Sum`` modules, option-A shortcuts."""
    import copy

    from zennit.canonizers import NamedMergeBatchNorm
    from zennit.layer import Sum as ZennitSum

    from xai_serve.models import Sum

    class Adapter(nn.Module):  # zennit's Sum takes one stacked tensor
        def __init__(self) -> None:
            super().__init__()
            self.sum = ZennitSum()

        def forward(self, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
            return self.sum(torch.stack([a, b], dim=-1))

    model, x = zoo("resnet20", batch=2)
    _exact_bn(model)
    target = torch.tensor([3, 5])
    ours = create_explainer("lrp", model)(x, target)
    oracle = copy.deepcopy(model)
    for block in oracle.modules():
        if isinstance(getattr(block, "add", None), Sum):
            block.add = Adapter()
    pairs = [([n], n.replace("conv", "bn")) for n, m in oracle.named_modules() if isinstance(m, nn.Conv2d)]
    composite = EpsilonPlusFlat(canonizers=[NamedMergeBatchNorm(pairs)])
    assert rel_diff(ours, _zennit(oracle, x, target, composite)) <= PARITY


def test_training_mode_batchnorm_is_refused(zoo) -> None:
    from xai_serve.errors import InvalidArgumentError

    model, x = zoo("simplenet", batch=2)
    model.train()
    with pytest.raises(InvalidArgumentError, match="eval"):
        create_explainer("lrp", model)(x, 0)
    assert model_hooks(model) == []
