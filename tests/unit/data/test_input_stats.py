"""The training statistics recorded in the model card (``input_stats``): per-channel pixel mean and std."""

from __future__ import annotations

import pytest

from xai_serve.data.digits import load_digits_bundle
from xai_serve.data.input_stats import input_stats


def test_digits_statistics_equal_the_training_normalisation():
    train = load_digits_bundle("train")
    stats = input_stats(train)
    assert stats["n"] == [float(len(train.dataset))]
    # the digits normalisation is the training split's mean and (sample) std over every pixel
    assert stats["mean"] == pytest.approx(train.mean, abs=1e-6)
    assert stats["std"] == pytest.approx(train.std, rel=1e-4)


def test_statistics_are_bounded_to_the_first_images():
    train = load_digits_bundle("train", channels=3)
    stats = input_stats(train, max_images=10)
    assert stats["n"] == [10.0] and len(stats["mean"]) == len(stats["std"]) == 3
