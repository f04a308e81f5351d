"""The seeded holdout every loader without a validation split uses (MNIST, CIFAR-10, image folders)."""

from __future__ import annotations

import pytest

from xai_serve.data.splits import holdout_split, holdout_subset
from xai_serve.errors import InvalidParameterError


def _items(subset) -> list[str]:
    return [subset[i] for i in range(len(subset))]


def test_holdout_subset_parts_are_the_split_and_cover_the_set() -> None:
    full = [f"item{i}" for i in range(50)]
    train_idx, val_idx = holdout_split(50, 0.2, seed=3)
    train, val = _items(holdout_subset(full, "train", 0.2, 3)), _items(holdout_subset(full, "val", 0.2, 3))
    assert train == [full[i] for i in train_idx]
    assert val == [full[i] for i in val_idx]
    assert len(val) == 10 and sorted(train + val) == sorted(full)
    assert val != _items(holdout_subset(full, "val", 0.2, 4))  # another seed, another holdout
    with pytest.raises(InvalidParameterError):
        holdout_subset(full, "test", 0.2, 3)
