"""Index extraction (docs/methods.md#decomp-filters) recovers planted class-specific channels; selectivity
Psi."""

from __future__ import annotations

import pytest
import torch

from xai_serve.decomposition.filters import class_filters, find_class_filters, mass_counts, selectivity
from xai_serve.errors import InvalidArgumentError

D, K, N = 64, 4, 50


def planted(seed: int = 0, strong: int = 5) -> tuple[torch.Tensor, torch.Tensor, list[list[int]]]:
    """Non-negative features: noise in [0, 0.1) plus, per class, ``strong`` planted channels at 1..2."""
    g = torch.Generator().manual_seed(seed)
    perm = torch.randperm(D, generator=g)
    sets = [sorted(perm[c * strong : (c + 1) * strong].tolist()) for c in range(K)]
    feats, labels = [], []
    for c, s in enumerate(sets):
        h = torch.rand(N, D, generator=g) * 0.1
        h[:, s] += 1 + torch.rand(N, len(s), generator=g)
        feats.append(h)
        labels += [c] * N
    return torch.cat(feats), torch.tensor(labels), sets


def test_integer_k_recovers_planted_channels() -> None:
    feats, labels, sets = planted()
    found = find_class_filters(feats, labels, 5, K)
    assert [sorted(s) for s in found] == sets
    # k smaller than the planted set: a subset of it; larger: contains it
    assert all(set(s) <= set(p) for s, p in zip(find_class_filters(feats, labels, 3, K), sets, strict=True))
    assert all(set(p) <= set(s) for s, p in zip(find_class_filters(feats, labels, 8, K), sets, strict=True))


def test_fractional_k_recovers_planted_channels_with_variable_size() -> None:
    feats, labels, sets = planted(strong=5)
    found = find_class_filters(feats, labels, 0.5, K)
    for s, p in zip(found, sets, strict=True):
        assert set(s) <= set(p) and len(s) >= 1
    # variable size per class: class 0 gets 3 planted channels, the others 6
    f2, l2, _ = planted(seed=1, strong=6)
    f2[l2 == 0] = torch.rand(int((l2 == 0).sum()), D) * 0.1
    f2[l2 == 0, :3] += 2.0
    sizes = [len(s) for s in find_class_filters(f2, l2, 0.5, K)]
    assert set(find_class_filters(f2, l2, 0.5, K)[0]) <= {0, 1, 2}
    assert len(set(sizes)) > 1


def test_fractional_rule_matches_seed_expression() -> None:
    feats, labels, _ = planted(seed=3)
    rows = feats[labels == 1]
    k = 0.6
    r = rows / rows.sum(1, keepdim=True)
    n = mass_counts(rows, k)
    kk = int(n.double().mean())
    top = r.topk(kk, dim=1).indices.flatten()
    freq = torch.bincount(top, minlength=D).double()
    freq = freq / freq.sum()
    order = freq.argsort(stable=True)
    expected = set(
        order[freq[order].cumsum(0) > k].tolist()
    )  # freq.argsort()[freq[freq.argsort()].cumsum() > k]
    assert set(class_filters(rows, k)) == expected


def test_mass_counts_and_selectivity_closed_form() -> None:
    h = torch.tensor([[4.0, 3.0, 2.0, 1.0] + [0.0] * 4, [1.0] * 8])
    # row 0: masses 0.4, 0.7, 0.9, 1.0 -> 0.7 needs 2 ; row 1: 0.7 needs 6 (6/8 = 0.75)
    assert mass_counts(h, 0.7).tolist() == [2, 6]
    s = selectivity(h, 0.7)
    assert s.filters_mean == 4.0 and s.psi_mean == pytest.approx((8 - 4) / 8)
    assert s.psi_median == pytest.approx((8 - 4) / 8)


@pytest.mark.parametrize("k", [0, -1, 1.5, 65, 1.0 + 1e-9])
def test_bad_k_refused(k: float) -> None:
    feats, labels, _ = planted()
    with pytest.raises(InvalidArgumentError, match="k"):
        find_class_filters(feats, labels, k, K)
