"""Model-parameter randomisation: rho = 1 at level zero, similarity falls as layers are randomised
on a trained model, the model is restored bit-identically, schedules follow their definitions."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from xai_serve.evaluation.randomisation import levels, restored, schedule, similarity_by_level


def _state(model: nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.clone() for k, v in model.state_dict().items()}


def test_trained_model_is_accurate(trained_digits_mlp):
    model, x, y = trained_digits_mlp
    assert (model(x).argmax(1) == y).float().mean() > 0.85


@pytest.mark.parametrize("mode", ["cascading", "independent"])
def test_similarity_one_at_level_zero_and_falls(trained_digits_mlp, gradient_attribution, mode):
    model, x, y = trained_digits_mlp
    x, y = x[:40], y[:40]
    before = _state(model)
    layers = schedule(model)
    assert [layer.name for layer in layers] == ["5", "3", "1"]  # top-down
    res = similarity_by_level(model, {"gradient": gradient_attribution(model)}, x, y, layers, mode, seed=0)
    sims = res["gradient"]
    for key in ("spearman", "spearman_abs", "ssim"):
        assert sims[key].shape == (4, 40)
        np.testing.assert_allclose(sims[key][0], 1.0, atol=1e-12)
    mean = sims["spearman"].mean(axis=1)
    if mode == "cascading":
        # falls as layers are randomised (the signed rho may flip sign, the absolute one falls)
        assert mean[1] < 0.9 and abs(mean[3]) < 0.3
        mean_abs = sims["spearman_abs"].mean(axis=1)
        assert mean_abs[0] > mean_abs[1] > mean_abs[3]
    else:
        assert (mean[1:] < 0.9).all()
    for k, v in model.state_dict().items():
        assert torch.equal(v, before[k]), k  # restored bit-identically


def test_randomisation_is_deterministic_in_seed(trained_digits_mlp, gradient_attribution):
    model, x, y = trained_digits_mlp
    fn = {"gradient": gradient_attribution(model)}
    a = similarity_by_level(model, fn, x[:8], y[:8], schedule(model), "cascading", seed=3)
    b = similarity_by_level(model, fn, x[:8], y[:8], schedule(model), "cascading", seed=3)
    c = similarity_by_level(model, fn, x[:8], y[:8], schedule(model), "cascading", seed=4)
    np.testing.assert_array_equal(a["gradient"]["spearman"], b["gradient"]["spearman"])
    assert not np.array_equal(a["gradient"]["spearman"], c["gradient"]["spearman"])


def test_cascading_is_cumulative_and_independent_is_not():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(4, 4), nn.ReLU(), nn.Linear(4, 4), nn.ReLU(), nn.Linear(4, 2))
    orig = _state(model)
    layers = schedule(model)
    with restored(model):
        for i, _ in levels(model, layers, "cascading", seed=0):
            changed = {k.split(".")[0] for k, v in model.state_dict().items() if not torch.equal(v, orig[k])}
            assert changed == set(["4", "2", "0"][:i])
    with restored(model):
        for i, _ in levels(model, layers, "independent", seed=0):
            changed = {k.split(".")[0] for k, v in model.state_dict().items() if not torch.equal(v, orig[k])}
            assert changed == {["4", "2", "0"][i - 1]}
    assert all(torch.equal(v, orig[k]) for k, v in model.state_dict().items())


def test_seed_a_schedule_on_resnet():
    from xai_serve.models import create_model

    model = create_model("resnet20").eval()
    orig = _state(model)
    layers = schedule(model, "pattern_theory")
    assert [layer.name for layer in layers] == ["linear", "layer3", "layer2", "layer1"]
    assert layers[0].params == ("linear.weight",) and layers[0].scale == 1.0
    assert all(layer.scale == 0.1 for layer in layers[1:])
    with restored(model):
        for _ in levels(model, layers, "cascading", seed=0):
            pass
        sd = model.state_dict()
        assert torch.equal(sd["conv1.weight"], orig["conv1.weight"])  # stem untouched
        assert torch.equal(sd["linear.bias"], orig["linear.bias"])
        assert all(torch.equal(sd[k], orig[k]) for k in sd if "running" in k)  # BN stats untouched
        w = sd["layer1.0.conv1.weight"]
        assert not torch.equal(w, orig["layer1.0.conv1.weight"])
        assert 0.08 < float(w.std()) < 0.12  # 0.1 * N(0, 1)
        assert 0.9 < float(sd["linear.weight"].std()) < 1.1
    assert all(torch.equal(v, orig[k]) for k, v in model.state_dict().items())
