from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from pathlib import Path

import pytest
import torch
from torch import nn

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures"


@pytest.fixture
def resnet20_fixture() -> Path:
    return FIXTURES / "resnet20-12fca82f.th"


def _relu_call_counts(model: nn.Module, x: torch.Tensor) -> Counter[str]:
    """Run ``model(x)`` and count how often each ReLU module was called."""
    counts: Counter[str] = Counter()
    handles = []
    for name, module in model.named_modules():
        if isinstance(module, nn.ReLU):
            counts[name] = 0
            handles.append(module.register_forward_hook(lambda m, i, o, name=name: counts.update([name])))
    try:
        with torch.no_grad():
            model(x)
    finally:
        for h in handles:
            h.remove()
    return counts


@pytest.fixture
def relu_call_counts() -> Callable[[nn.Module, torch.Tensor], Counter[str]]:
    """``relu_call_counts(model, x)``: how often each ReLU module runs in one forward pass."""
    return _relu_call_counts
