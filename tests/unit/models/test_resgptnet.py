"""ResGPTNet (General Pattern Theory, docs/methods.md#gpt-model): shapes, outputs, the torchvision ResNet-34
backbone layout."""

from __future__ import annotations

import torch
import torchvision
from torch import nn

from xai_serve.models import ModelCard, create_model
from xai_serve.testing import gpt_card


def test_resgptnet34_shapes_and_backbone() -> None:
    model = create_model("resgptnet34").eval()
    assert model.output_names == ("y", "yg", "ys")
    with torch.no_grad():
        y, yg, ys = model(torch.rand(2, 1, 28, 28))
    assert y.shape == (2, 10) and yg.shape == (2, 4, 28, 28) and ys.shape == (2, 8, 28, 28)
    assert (yg >= 0).all() and (ys >= 0).all()  # the heads end in ReLU, as in the original code
    ref = torchvision.models.resnet34(weights=None)
    ref_keys = {k: v.shape for k, v in ref.state_dict().items() if not k.startswith("fc.")}
    assert {k: v.shape for k, v in model.backbone.state_dict().items()} == ref_keys
    assert torch.equal(model.channel_adj.weight, torch.ones(3, 1, 1, 1))
    assert model.channel_adj.weight.requires_grad  # trained, as in the original code
    model.output_mode = "prediction_only"
    with torch.no_grad():
        assert model(torch.rand(1, 1, 28, 28)).shape == (1, 10)


def test_small_variant_has_the_same_outputs_and_distinct_relus() -> None:
    model = create_model("resgptnet_small").eval()
    x = torch.rand(3, 1, 28, 28)
    with torch.no_grad():
        shapes = [tuple(t.shape) for t in model(x)]
    assert shapes == [(3, 10), (3, 4, 28, 28), (3, 8, 28, 28)]
    assert sum(p.numel() for p in model.parameters()) < 400_000
    calls: dict[int, int] = {}
    relus = [m for m in model.modules() if isinstance(m, nn.ReLU)]
    assert relus and not any(m.inplace for m in relus)
    handles = [
        m.register_forward_hook(lambda m, i, o: calls.update({id(m): calls.get(id(m), 0) + 1})) for m in relus
    ]
    with torch.no_grad():
        model(x)
    for h in handles:
        h.remove()
    assert set(calls.values()) == {1}


def test_card_records_outputs() -> None:
    card = gpt_card()
    again = ModelCard.from_dict(card.to_dict())
    assert again.outputs == ["y", "yg", "ys"]
    legacy = card.to_dict()
    del legacy["outputs"]
    assert ModelCard.from_dict(legacy).outputs == []
