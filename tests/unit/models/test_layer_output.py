"""``layer_output``: one layer's output from a forward pass that stops there, hooks removed."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from xai_serve.models.layers import layer_output


def test_stops_at_the_layer_and_cleans_up() -> None:
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(3, 4), nn.ReLU(), nn.Linear(4, 2))
    after: list[int] = []
    model[2].register_forward_hook(lambda *_: after.append(1))
    x = torch.randn(5, 3)
    out = layer_output(model, model[1], x)
    torch.testing.assert_close(out, torch.relu(model[0](x)))
    assert after == []  # the layers after it did not run
    assert not model[1]._forward_hooks
    assert layer_output(model, nn.ReLU(), x) is None  # never called: the pass runs to its end
    assert after == [1]


def test_errors_propagate_and_the_hook_is_removed() -> None:
    model = nn.Sequential(nn.Linear(3, 4), nn.Linear(5, 2))
    with pytest.raises(RuntimeError):
        layer_output(model, model[1], torch.randn(2, 3))  # the shapes do not chain: fails before model[1]
    assert not model[1]._forward_hooks
