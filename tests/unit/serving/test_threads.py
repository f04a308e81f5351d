"""The worker's thread policy: multiply-adds per image counted in closed form, heavy models get every
core, light ones leave one to TorchServe's frontend."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from xai_serve.models import create_model
from xai_serve.serving import threads
from xai_serve.serving.threads import HEAVY_MACS, forward_macs, worker_threads


def test_macs_closed_form() -> None:
    model = nn.Sequential(
        nn.Conv2d(3, 8, 3, padding=1),  # 8x16x16 outputs, 3*3*3 each
        nn.ReLU(),
        nn.Conv2d(8, 8, 3, stride=2, padding=1, groups=2),  # 8x8x8 outputs, (8/2)*3*3 each
        nn.ConvTranspose2d(8, 4, 2, stride=2),  # 8x8x8 inputs, 4*2*2 each
        nn.Flatten(),
        nn.Linear(4 * 16 * 16, 10),
    ).eval()
    expected = 8 * 16 * 16 * 27 + 8 * 8 * 8 * 36 + 8 * 8 * 8 * 16 + 10 * 1024
    assert forward_macs(model, [3, 16, 16]) == expected
    assert not any(m._forward_hooks for m in model.modules())  # the probe leaves no hook


def test_resnet18_is_heavy_and_the_digits_simplenet_light() -> None:
    resnet = create_model("resnet18", num_classes=1000).eval()
    assert forward_macs(resnet, [3, 224, 224]) == pytest.approx(1.814e9, rel=1e-3)  # the published 1.8 G
    simplenet = create_model("simplenet_310k").eval()
    assert forward_macs(simplenet, [1, 28, 28]) < HEAVY_MACS


def test_policy(monkeypatch) -> None:
    monkeypatch.setattr(threads, "cores", lambda: 2)
    assert worker_threads(None) == 1
    assert worker_threads(40e6) == 1
    assert worker_threads(1.8e9) == 2
    monkeypatch.setattr(threads, "cores", lambda: 1)
    assert worker_threads(1.8e9) == 1 and worker_threads(None) == 1


def test_probe_keeps_the_models_dtype() -> None:
    model = nn.Sequential(nn.Linear(4, 3)).double().eval()
    assert forward_macs(model, [4]) == 12
    assert next(model.parameters()).dtype == torch.float64
