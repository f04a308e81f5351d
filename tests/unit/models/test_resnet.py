from __future__ import annotations

import copy
from collections import Counter
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
import torchvision
from torch import nn

from xai_serve.models import CanonicalBasicBlock, CanonicalBottleneck, canonicalise, create_model


def akamaster_reference_forward(sd: dict[str, torch.Tensor], x: torch.Tensor) -> torch.Tensor:
    """Functional ResNet-20 forward as in akamaster/pytorch_resnet_cifar10 (F.relu, option-A pad)."""

    def bn(t: torch.Tensor, p: str) -> torch.Tensor:
        return F.batch_norm(
            t,
            sd[p + ".running_mean"],
            sd[p + ".running_var"],
            sd[p + ".weight"],
            sd[p + ".bias"],
            training=False,
            eps=1e-5,
        )

    out = F.relu(bn(F.conv2d(x, sd["conv1.weight"], padding=1), "bn1"))
    for stage, planes in ((1, 16), (2, 32), (3, 64)):
        for block in range(3):
            p = f"layer{stage}.{block}"
            stride = 2 if stage > 1 and block == 0 else 1
            h = F.relu(bn(F.conv2d(out, sd[p + ".conv1.weight"], stride=stride, padding=1), p + ".bn1"))
            h = bn(F.conv2d(h, sd[p + ".conv2.weight"], padding=1), p + ".bn2")
            short = out
            if stride != 1:
                short = F.pad(out[:, :, ::2, ::2], (0, 0, 0, 0, planes // 4, planes // 4))
            out = F.relu(h + short)
    out = F.avg_pool2d(out, out.size(3)).flatten(1)
    return F.linear(out, sd["linear.weight"], sd["linear.bias"])


def test_resnet20_fixture_loads_weights_only_and_matches_reference(resnet20_fixture: Path) -> None:
    raw = torch.load(resnet20_fixture, map_location="cpu", weights_only=True)
    assert abs(raw["best_prec1"] - 91.78) < 1e-3
    sd = {k.removeprefix("module."): v for k, v in raw["state_dict"].items()}
    model = create_model("resnet20", weights=str(resnet20_fixture)).eval()
    torch.manual_seed(0)
    x = torch.randn(4, 3, 32, 32)
    with torch.no_grad():
        logits = model(x)
        reference = akamaster_reference_forward(sd, x)
    torch.testing.assert_close(logits, reference, atol=1e-5, rtol=1e-5)


def test_resnet20_logits_unchanged_by_canonicalise(resnet20_fixture: Path, relu_call_counts: Counter) -> None:
    model = create_model("resnet20", weights=str(resnet20_fixture)).eval()
    x = torch.randn(4, 3, 32, 32, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        before = model(x)
        keys_before = list(model.state_dict())
        canonicalise(model)
        after = model(x)
    assert torch.equal(before, after)
    assert list(model.state_dict()) == keys_before
    assert set(relu_call_counts(model, x).values()) == {1}


def _torchvision_check(
    builder: Any, block_cls: type[nn.Module], x: torch.Tensor, relu_call_counts: Any
) -> None:
    torch.manual_seed(0)
    original = builder(weights=None, num_classes=10).eval()
    # give BatchNorm non-trivial statistics so the check is not vacuous
    for m in original.modules():
        if isinstance(m, nn.BatchNorm2d):
            m.running_mean.uniform_(-0.1, 0.1)
            m.running_var.uniform_(0.5, 1.5)
    canonical = canonicalise(copy.deepcopy(original))
    assert all(type(m) is block_cls for m in canonical.modules() if isinstance(m, block_cls.__bases__[0]))
    with torch.no_grad():
        assert torch.equal(original(x), canonical(x))
    assert list(original.state_dict()) == list(canonical.state_dict())
    assert set(relu_call_counts(canonical, x).values()) == {1}
    assert all(not m.inplace for m in canonical.modules() if isinstance(m, nn.ReLU))
    # idempotent
    n_modules = len(list(canonical.modules()))
    canonicalise(canonical)
    assert len(list(canonical.modules())) == n_modules


def test_canonicalise_torchvision_basicblock_bit_identical(relu_call_counts: Any) -> None:
    x = torch.randn(2, 3, 64, 64)
    _torchvision_check(torchvision.models.resnet18, CanonicalBasicBlock, x, relu_call_counts)


def test_canonicalise_torchvision_bottleneck_bit_identical(relu_call_counts: Any) -> None:
    x = torch.randn(1, 3, 64, 64)
    _torchvision_check(torchvision.models.resnet50, CanonicalBottleneck, x, relu_call_counts)


def test_canonicalise_splits_a_relu_registered_twice() -> None:
    relu = nn.ReLU(inplace=True)
    model = nn.Sequential(nn.Linear(4, 4), relu, nn.Linear(4, 4), relu)
    canonicalise(model)
    assert model[1] is not model[3]
    assert not model[1].inplace and not model[3].inplace


def test_torchvision_resnet_loads_a_local_state_dict(tmp_path: Path) -> None:
    torch.manual_seed(0)
    src = create_model("resnet18", num_classes=10)
    path = tmp_path / "r18.pt"
    torch.save({"module." + k: v for k, v in src.state_dict().items()}, path)
    loaded = create_model("resnet18", num_classes=10, weights=str(path))
    for (k, a), (_, b) in zip(src.state_dict().items(), loaded.state_dict().items(), strict=True):
        assert torch.equal(a, b), k
