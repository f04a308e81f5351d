from __future__ import annotations

import numpy as np
import pytest
import torch
from sklearn.datasets import load_digits

from xai_serve.data import DatasetBundle, list_datasets, load_dataset
from xai_serve.errors import InvalidArgumentError, NotFoundError


def _all(bundle: DatasetBundle) -> tuple[torch.Tensor, torch.Tensor]:
    xs, ys = zip(*(bundle.dataset[i] for i in range(len(bundle.dataset))), strict=True)  # type: ignore[arg-type]
    return torch.stack(xs), torch.tensor(ys)


def test_registry_names() -> None:
    assert {"digits", "mnist", "cifar10", "imagefolder"} <= set(list_datasets())
    with pytest.raises(NotFoundError, match="digits"):
        load_dataset("no_such_data", "train")
    with pytest.raises(InvalidArgumentError, match="split"):
        load_dataset("digits", "training")


def test_digits_split_sizes_disjoint_and_stratified() -> None:
    parts = {s: load_dataset("digits", s) for s in ("train", "val", "test")}
    sizes = {s: len(b.dataset) for s, b in parts.items()}
    assert sizes == {"train": 1259, "val": 179, "test": 359}
    assert sum(sizes.values()) == 1797
    # the three parts are a partition of the 1,797 images (compare pixels: no image in two parts)
    keys = [set(map(bytes, _all(b)[0].flatten(1).numpy())) for b in parts.values()]
    assert not (keys[0] & keys[1]) and not (keys[0] & keys[2]) and not (keys[1] & keys[2])
    counts = np.bincount(load_digits().target)
    test_counts = np.bincount(_all(parts["test"])[1].numpy(), minlength=10)
    assert np.all(np.abs(test_counts - 0.2 * counts) <= 1)


def test_digits_normalised_by_train_statistics_and_denormalise_inverts() -> None:
    train = load_dataset("digits", "train")
    x, y = _all(train)
    assert x.shape == (1259, 1, 28, 28) and x.dtype == torch.float32
    assert abs(float(x.mean())) < 1e-5 and abs(float(x.std()) - 1) < 1e-4
    pixels = train.denormalise(x)
    assert float(pixels.min()) >= -1e-6 and float(pixels.max()) <= 1 + 1e-6
    torch.testing.assert_close(train.normalise(pixels), x, atol=1e-5, rtol=0)
    assert train.labels == [str(i) for i in range(10)] and train.input_shape == [1, 28, 28]
    # bilinear 8x8 -> 28x28 of the sklearn image, values 0..16 scaled to [0, 1]
    raw = load_digits()
    first = torch.tensor(raw.images, dtype=torch.float32)[raw.target == int(y[0])]
    resized = torch.nn.functional.interpolate(first.unsqueeze(1) / 16, size=(28, 28), mode="bilinear")
    assert any(torch.allclose(r, pixels[0], atol=1e-5) for r in resized)


def test_digits_split_is_deterministic_and_seeded() -> None:
    a, _ = _all(load_dataset("digits", "test", seed=0))
    b, _ = _all(load_dataset("digits", "test", seed=0))
    c, _ = _all(load_dataset("digits", "test", seed=1))
    assert torch.equal(a, b)
    assert not torch.equal(a, c)


def test_digits_three_channel_variant() -> None:
    bundle = load_dataset("digits", "val", channels=3)
    x, _ = bundle.dataset[0]
    assert x.shape == (3, 32, 32) and bundle.input_shape == [3, 32, 32]
    assert len(bundle.mean) == len(bundle.std) == 3
    assert torch.equal(x[0], x[1]) and torch.equal(x[1], x[2])
