"""Mechanics of the essential-feature noise test (docs/methods.md#decomp-essential) on the released ResNet-20
with a tiny synthetic CIFAR-shaped split (no CIFAR-10 here)."""

from __future__ import annotations

import copy
from pathlib import Path

import pytest
import torch
from torch import nn

from xai_serve.data import load_dataset
from xai_serve.decomposition.essential import essential_counts
from xai_serve.decomposition.runs import essential
from xai_serve.decomposition.source import batches
from xai_serve.errors import InvalidArgumentError
from xai_serve.models import create_model
from xai_serve.models.decomposed import decompose


def expected_counts(
    model: nn.Module, batches: list[tuple[torch.Tensor, torch.Tensor]], indices: list[list[int]], seed: int
) -> dict[str, dict[str, int]]:
    """The noise test written out for a CIFAR ResNet (docs/methods.md#decomp-essential): the pooled features
    taken by a hook on ``avgpool``, then per batch two N(0, 1) draws from one seeded generator, replacing the
    image's class's influential filters (first draw) or all the others (second), classified by ``linear``."""
    pooled: list[torch.Tensor] = []
    handle = model.avgpool.register_forward_hook(lambda _m, _i, o: pooled.append(o.flatten(1)))
    gen = torch.Generator().manual_seed(seed)
    counts = {str(c): {"noise_at_inf": 0, "noise_at_noninf": 0, "images": 0} for c in range(10)}
    try:
        for x, y in batches:
            pooled.clear()
            with torch.no_grad():
                model(x)
            h = pooled[0]
            noise_inf, noise_other = torch.randn(h.shape, generator=gen), torch.randn(h.shape, generator=gen)
            for i, c in enumerate(y.tolist()):
                inf = torch.zeros(h.shape[1], dtype=torch.bool)
                inf[indices[c]] = True
                at_inf = torch.where(inf, noise_inf[i], h[i])
                at_other = torch.where(inf, h[i], noise_other[i])
                with torch.no_grad():
                    counts[str(c)]["noise_at_inf"] += int(model.linear(at_inf).argmax() == c)
                    counts[str(c)]["noise_at_noninf"] += int(model.linear(at_other).argmax() == c)
                counts[str(c)]["images"] += 1
    finally:
        handle.remove()
    return counts


def test_layout_and_counts_on_synthetic_cifar(tmp_path: Path, resnet20: nn.Module, released) -> None:
    root = released.write_cifar_folder(tmp_path, per_class_test=3)
    bundle = load_dataset("cifar10", "test", root=root)
    sets = released.released_indices(5)
    out = essential({"ours": (resnet20, sets), "csg": (resnet20, sets)}, bundle, seed=7, batch_size=8)
    assert set(out) == {"ours", "csg"} and set(out["ours"]) == {str(c) for c in range(10)}
    for per in out["ours"].values():
        assert set(per) == {"noise_at_inf", "noise_at_noninf", "images"} and per["images"] == 3
    loader = [(x, torch.as_tensor(y)) for x, y in batches(bundle, 8)]
    assert out["ours"] == expected_counts(resnet20, loader, sets, seed=7)
    assert out["ours"] == out["csg"]  # same model, sets and seed: same noise, same counts
    again = essential({"ours": (resnet20, sets)}, bundle, seed=7, batch_size=4)  # batch size is irrelevant
    assert sum(v["images"] for v in again["ours"].values()) == 30


def test_all_filters_noise_is_chance_and_none_is_the_model(resnet20: nn.Module) -> None:
    g = torch.Generator().manual_seed(0)
    x = torch.randn(200, 3, 32, 32, generator=g) * 0.5
    y = torch.randint(0, 10, (200,), generator=g)
    every = [list(range(64))] * 10
    counts = essential_counts(
        resnet20, [(x[i : i + 100], y[i : i + 100]) for i in range(0, 200, 100)], every, seed=1
    )
    with torch.no_grad():
        pred = resnet20(x).argmax(1)
    # noise on no filter (the complement of all 64 is empty): exactly the model's own hits
    for c in range(10):
        assert counts[str(c)]["noise_at_noninf"] == int(((pred == c) & (y == c)).sum())
    # noise on all 64 filters: the prediction no longer depends on the image -> about chance (1/10)
    hits = sum(v["noise_at_inf"] for v in counts.values())
    assert 0.02 <= hits / 200 <= 0.25


def test_random_init_and_refusals(released) -> None:
    torch.manual_seed(0)
    model = create_model("resnet20").eval()
    x, y = torch.randn(20, 3, 32, 32), torch.arange(20) % 10
    counts = essential_counts(model, [(x, y)], released.released_indices(5), seed=3)
    assert counts == expected_counts(model, [(x, y)], released.released_indices(5), seed=3)
    with pytest.raises(InvalidArgumentError, match="full linear layer"):
        essential_counts(
            decompose(copy.deepcopy(model), released.released_indices(5)),
            [(x, y)],
            released.released_indices(5),
        )
    with pytest.raises(InvalidArgumentError, match=r"9 filter sets for 10 classes"):
        essential_counts(model, [(x, y)], released.released_indices(5)[:9])


def test_batches_keep_the_split_order(tmp_path: Path, released) -> None:
    """The split loader the commands use: batches of the given size, in the dataset's order, unshuffled."""
    bundle = load_dataset("cifar10", "test", root=released.write_cifar_folder(tmp_path, per_class_test=3))
    loaded = list(batches(bundle, 8))
    assert [len(y) for _, y in loaded] == [8, 8, 8, 6]
    assert torch.equal(
        torch.cat([x for x, _ in loaded]), torch.stack([bundle.dataset[i][0] for i in range(30)])
    )
    assert torch.cat([torch.as_tensor(y) for _, y in loaded]).tolist() == [
        bundle.dataset[i][1] for i in range(30)
    ]
