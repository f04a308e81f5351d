"""Integrated gradients, SmoothGrad (and its variants) and occlusion against Captum 0.9 (float64), on a
CNN and a torchvision ResNet-18.

Tolerance: max |ours - captum| <= 1e-6 of max |captum|. SmoothGrad's noise is the method's documented
generator, injected into Captum's ``NoiseTunnel`` in place of its ``torch.normal`` draw.
"""

from __future__ import annotations

import pytest
import torch
from captum.attr import IntegratedGradients, NoiseTunnel, Occlusion, Saliency

from xai_serve.explain import create_explainer
from xai_serve.explain.smoothgrad import unit_noise

TOL = 1e-6
MODELS = ["cnn", "resnet18"]
TARGETS = [3, 7]


@pytest.mark.parametrize("model_name", MODELS)
@pytest.mark.parametrize(
    "integration", ["gausslegendre", "riemann_left", "riemann_right", "riemann_middle", "riemann_trapezoid"]
)
def test_integrated_gradients_matches_captum(zoo, rel_diff, model_name: str, integration: str) -> None:
    model, x = zoo(model_name, batch=2)
    explainer = create_explainer(
        "integrated_gradients", model, n_steps=7, integration=integration, internal_batch=5
    )
    ours = explainer.attribute(x, TARGETS)
    ref, delta = IntegratedGradients(model).attribute(
        x.clone(),
        target=torch.tensor(TARGETS),
        n_steps=7,
        method=integration,
        return_convergence_delta=True,
    )
    assert rel_diff(ours.heatmap, ref) <= TOL
    gap = torch.tensor(ours.stats["completeness_gap"], dtype=torch.float64)
    assert torch.allclose(gap, delta, rtol=1e-6, atol=TOL * float(ref.abs().sum()))


@pytest.mark.parametrize("model_name", MODELS)
@pytest.mark.parametrize("baseline", ["uniform", "blur"])
def test_integrated_gradients_baselines_match_captum(zoo, rel_diff, model_name: str, baseline: str) -> None:
    model, x = zoo(model_name, batch=2)
    explainer = create_explainer("integrated_gradients", model, n_steps=6, baseline=baseline, seed=3)
    base = explainer.baseline(x)
    assert not torch.equal(base, torch.zeros_like(x))
    ours = explainer(x, TARGETS)
    ref = IntegratedGradients(model).attribute(x.clone(), base, target=torch.tensor(TARGETS), n_steps=6)
    assert rel_diff(ours, ref) <= TOL


def test_integrated_gradients_completeness_gap_shrinks(zoo) -> None:
    model, x = zoo("cnn", batch=2)
    gaps = [
        max(
            abs(g)
            for g in create_explainer("integrated_gradients", model, n_steps=n)
            .attribute(x, 1)
            .stats["completeness_gap"]
        )
        for n in (2, 64)
    ]
    assert gaps[1] < gaps[0]


def test_uniform_baseline_is_seeded(zoo) -> None:
    model, x = zoo("cnn", batch=2)
    a = create_explainer("integrated_gradients", model, baseline="uniform", seed=5).baseline(x)
    b = create_explainer("integrated_gradients", model, baseline="uniform", seed=5).baseline(x)
    c = create_explainer("integrated_gradients", model, baseline="uniform", seed=6).baseline(x)
    assert torch.equal(a, b) and not torch.equal(a, c)
    assert float(a.min()) >= 0.0 and float(a.max()) <= 1.0  # pixels in [0, 1] under the default context


@pytest.mark.parametrize("model_name", MODELS)
@pytest.mark.parametrize("variant", ["smoothgrad", "smoothgrad_sq", "vargrad"])
def test_smoothgrad_matches_captum_noise_tunnel(
    zoo, rel_diff, monkeypatch, model_name: str, variant: str
) -> None:
    model, x = zoo(model_name, batch=2)
    samples, noise, seed = 5, 0.2, 11
    ours = create_explainer(
        "smoothgrad", model, samples=samples, noise=noise, variant=variant, seed=seed, internal_batch=3
    )(x, TARGETS)
    flat = x.flatten(1)
    sigma = noise * (flat.max(dim=1).values - flat.min(dim=1).values)
    unit = unit_noise(samples, tuple(x.shape[1:]), seed, x.dtype)
    injected = (sigma.view(-1, 1, 1, 1, 1) * unit[None]).reshape(-1, *x.shape[1:])
    monkeypatch.setattr(torch, "normal", lambda mean, std: injected.clone())
    ref = NoiseTunnel(Saliency(model)).attribute(
        x.clone(), nt_type=variant, nt_samples=samples, stdevs=1.0, target=torch.tensor(TARGETS), abs=False
    )
    assert rel_diff(ours, ref) <= TOL


def test_smoothgrad_seed_reproduces_and_unseeded_differs(zoo) -> None:
    model, x = zoo("cnn", batch=1)
    first = create_explainer("smoothgrad", model, samples=4, seed=2)(x, 1)
    assert torch.equal(first, create_explainer("smoothgrad", model, samples=4, seed=2)(x, 1))
    assert not torch.equal(first, create_explainer("smoothgrad", model, samples=4, seed=3)(x, 1))
    unseeded = create_explainer("smoothgrad", model, samples=4)
    assert not torch.equal(unseeded(x, 1), unseeded(x, 1))


@pytest.mark.parametrize(
    ("model_name", "window", "stride", "baseline"),
    [("cnn", 3, 2, 0.0), ("cnn", 4, 4, -0.5), ("resnet18", 16, 8, 0.0), ("resnet18", 20, 12, 0.25)],
)
def test_occlusion_matches_captum(
    zoo, rel_diff, model_name: str, window: int, stride: int, baseline: float
) -> None:
    model, x = zoo(model_name, batch=2)
    channels = x.shape[1]
    ours = create_explainer(
        "occlusion", model, window=window, stride=stride, baseline=baseline, internal_batch=7
    )(x, TARGETS)
    ref = Occlusion(model).attribute(
        x.clone(),
        sliding_window_shapes=(channels, window, window),
        strides=(channels, stride, stride),
        baselines=baseline,
        target=torch.tensor(TARGETS),
    )
    assert rel_diff(ours, ref.to(ours.dtype)) <= TOL


def test_occlusion_refuses_bad_windows(zoo) -> None:
    from xai_serve.errors import InvalidParameterError

    model, x = zoo("cnn", batch=1)
    with pytest.raises(InvalidParameterError, match="window"):
        create_explainer("occlusion", model, window=9)(x, 1)
    with pytest.raises(InvalidParameterError, match="stride"):
        create_explainer("occlusion", model, window=2, stride=3)(x, 1)


@pytest.mark.parametrize("method", ["integrated_gradients", "smoothgrad", "occlusion"])
def test_progress_reports_every_chunk(zoo, method: str) -> None:
    model, x = zoo("cnn", batch=2)
    params = {"integrated_gradients": {"n_steps": 8}, "smoothgrad": {"samples": 8, "seed": 0}}.get(method, {})
    explainer = create_explainer(method, model, internal_batch=4, **params)
    seen: list[tuple[int, int]] = []
    explainer.progress = lambda done, total: seen.append((done, total))  # type: ignore[attr-defined]
    explainer(x, 1)
    assert seen and seen[-1][0] == seen[-1][1]
    assert [d for d, _ in seen] == sorted(d for d, _ in seen)


def test_blur_baseline_needs_images(zoo) -> None:
    from xai_serve.errors import InvalidParameterError

    model, _ = zoo("mlp", batch=1)
    flat = torch.randn(1, 64, dtype=torch.float64)
    with pytest.raises(InvalidParameterError, match="blur"):
        create_explainer("integrated_gradients", model, baseline="blur")(flat, 1)
