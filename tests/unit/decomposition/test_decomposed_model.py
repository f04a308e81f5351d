"""The decomposed model form (docs/methods.md#decomp-layer): masked final layer semantics, gather formula,
identity with every filter kept, checkpoint compatibility, fine-tuning keeps masked entries at zero."""

from __future__ import annotations

import copy

import pytest
import torch
from torch import nn

from xai_serve.errors import InvalidArgumentError, UnsupportedLayerError
from xai_serve.models import create_model
from xai_serve.models.decomposed import decompose, find_head, is_decomposed
from xai_serve.models.layers import MaskedLinear


class Tiny(nn.Module):
    """conv stage -> global average pool -> linear: 3 filters, 2 classes."""

    def __init__(self) -> None:
        super().__init__()
        self.features = nn.Identity()
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.flatten = nn.Flatten()
        self.fc = nn.Linear(3, 2)


def _tiny_forward(m: Tiny, x: torch.Tensor) -> torch.Tensor:
    return m.fc(m.flatten(m.pool(m.features(x))))


Tiny.forward = _tiny_forward  # type: ignore[method-assign]


def test_masked_layer_hand_computed() -> None:
    m = Tiny()
    with torch.no_grad():
        m.fc.weight.copy_(torch.tensor([[1.0, 2.0, 3.0], [-1.0, 0.5, 4.0]]))
        m.fc.bias.copy_(torch.tensor([0.25, -0.5]))
    decompose(m, [[0, 2], [1]])
    # h = spatial means: [2, 1, -1]
    x = torch.stack([torch.full((2, 2), 2.0), torch.full((2, 2), 1.0), torch.full((2, 2), -1.0)])[None]
    out = m(x)
    # class 0: 0.25 + 1*2 + 3*(-1) = -0.75 ; class 1: -0.5 + 0.5*1 = 0.0
    assert out.tolist() == [[-0.75, 0.0]]
    assert m.fc.weight.tolist() == [[1.0, 0.0, 3.0], [0.0, 0.5, 0.0]]  # masked entries are zero
    assert isinstance(m.fc, MaskedLinear) and m.fc.filters(0) == [0, 2]


def test_gather_formula_and_full_identity(resnet20: nn.Module, released) -> None:
    indices = released.released_indices(5)
    dec = decompose(copy.deepcopy(resnet20), indices).eval()
    x = torch.randn(4, 3, 32, 32, generator=torch.Generator().manual_seed(0))
    head = find_head(resnet20)
    seen = {}
    handle = head.linear.register_forward_pre_hook(lambda _m, a: seen.setdefault("h", a[0].detach()))
    with torch.no_grad():
        full = resnet20(x)
        got = dec(x)
    handle.remove()
    w, b, h = head.linear.weight.detach(), head.linear.bias.detach(), seen["h"]
    expected = torch.stack(
        [b[c] + (w[c, indices[c]] * h[:, indices[c]]).sum(dim=1) for c in range(10)], dim=1
    )  # logit_c = b_c + sum_{f in S_c} W[c,f] h_f
    torch.testing.assert_close(got, expected, rtol=1e-5, atol=1e-5)
    everything = decompose(copy.deepcopy(resnet20), [list(range(64))] * 10).eval()
    with torch.no_grad():
        assert torch.equal(everything(x), full)


def test_registered_form_loads_base_checkpoint(released) -> None:
    indices = released.released_indices(10)
    m = create_model("decomposed", base="resnet20", indices=indices, weights=str(released.resnet20_weights))
    base = create_model("resnet20", weights=str(released.resnet20_weights))
    assert set(m.state_dict()) == set(base.state_dict())
    assert is_decomposed(m) and not is_decomposed(base)
    # loading a full-weight state_dict keeps the masked entries at zero
    m.load_state_dict(base.state_dict())
    w = m.linear.weight.detach()
    mask = torch.zeros(10, 64)
    for c, s in enumerate(indices):
        mask[c, s] = 1
    assert torch.equal(w, base.linear.weight.detach() * mask)


def test_training_step_keeps_masked_entries_zero(resnet20: nn.Module, released) -> None:
    m = decompose(copy.deepcopy(resnet20), released.released_indices(5)).train()
    opt = torch.optim.Adam(m.parameters(), lr=1e-2, weight_decay=1e-3)
    x, y = torch.randn(8, 3, 32, 32), torch.randint(0, 10, (8,))
    for _ in range(2):
        opt.zero_grad()
        nn.functional.cross_entropy(m(x), y).backward()
        opt.step()
    mask = m.linear.mask
    assert int((m.linear.weight.detach()[mask == 0] != 0).sum()) == 0
    assert not torch.equal(m.linear.weight.detach()[mask == 1], resnet20.linear.weight.detach()[mask == 1])


@pytest.mark.parametrize(
    ("name", "kwargs", "layer", "linear"),
    [
        ("resnet20", {}, "layer3", "linear"),
        ("resnet18", {"num_classes": 10}, "layer4", "fc"),
        ("simplenet_310k", {}, "features", "classifier"),
    ],
)
def test_find_head_names_layers(name: str, kwargs: dict, layer: str, linear: str) -> None:
    head = find_head(create_model(name, **kwargs))
    assert (head.feature_name, head.linear_name) == (layer, linear)
    assert layer in head.describe()


def test_unsupported_heads_and_bad_sets() -> None:
    with pytest.raises(UnsupportedLayerError, match=r"nn\.Linear"):
        find_head(create_model("mlp", in_features=784))
    with pytest.raises(InvalidArgumentError, match="9 classes"):
        decompose(create_model("resnet20"), [[0]] * 9)
    with pytest.raises(InvalidArgumentError, match="out of range"):
        decompose(create_model("resnet20"), [[64]] * 10)


def test_every_method_runs_and_sees_the_masked_layer(resnet20: nn.Module, released) -> None:
    from xai_serve.explain import create_explainer, list_methods

    indices = released.released_indices(5)
    dec = decompose(copy.deepcopy(resnet20), indices).eval()
    plain = copy.deepcopy(resnet20).eval()  # an independent construction: a plain Linear with W * mask
    with torch.no_grad():
        mask = torch.zeros(10, 64)
        for c, s in enumerate(indices):
            mask[c, s] = 1
        plain.linear.weight.mul_(mask)
    x = torch.randn(2, 3, 32, 32, generator=torch.Generator().manual_seed(5))
    for name, spec in list_methods().items():
        params = dict(spec.test_params)
        got = create_explainer(name, dec, **params)(x, [3, 7])
        assert got.shape == x.shape and torch.isfinite(got).all(), name
        if name in ("gradient", "lrp", "gradcam", "decomposed"):
            want = create_explainer(name, plain, **params)(x, [3, 7])
            torch.testing.assert_close(got, want, rtol=1e-5, atol=1e-6, msg=name)
