"""The pattern digits' concept set (General Pattern Theory generator types and transformations per
pixel, Broden format): the same images as ``load_pattern_digits``, labels that follow the grown board,
and a folder the Broden reader gives back exactly."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from xai_serve.data import load_dataset
from xai_serve.data import pattern_digits as pd
from xai_serve.data import pattern_growth as pg
from xai_serve.data.broden import BrodenDataset
from xai_serve.data.pattern_concepts import CONCEPTS, concept_boards, write_pattern_concepts


def test_the_images_are_the_datasets() -> None:
    images, _types, _transformations = concept_boards("test", 3, 40)
    bundle = load_dataset("pattern_digits", "test", seed=3, size=40)
    expected = np.stack([bundle.dataset[i][0][0].numpy() for i in range(40)])
    np.testing.assert_allclose(images, expected, atol=1e-6)


def test_labels_follow_the_grown_board() -> None:
    images, types, transformations = concept_boards("val", 0, 60)
    # replay the same draws: an image whose rotation is near zero keeps its board's codes in place
    rng = pd.split_rng("val", 0)
    classes = rng.integers(0, 10, size=60)
    draws = [pd.class_seeds(int(c), rng) for c in classes]
    checked = 0
    for j, (seeds, t, deg) in enumerate(draws):
        board = pg.develop(t, seeds)
        if abs(deg) >= 2:
            continue
        i, k = pg.decode(board)
        assert np.array_equal(types[j], i) and np.array_equal(transformations[j], np.where(i == 1, 0, k))
        seed_pixels = seeds > 1  # the seed generators keep their own type (2) and transformation
        assert (types[j][seed_pixels] == 2).all()
        assert np.array_equal(transformations[j][seed_pixels], pg.decode(seeds)[1][seed_pixels])
        checked += 1
    assert checked >= 3
    # rotated or not: every labelled pixel has one type of 2..4 and one transformation 1..8
    fg = types > 1
    assert set(np.unique(types[fg])) <= {2, 3, 4} and (transformations[fg] >= 1).all()
    assert (transformations[~fg] == 0).all()
    # the strokes of the image lie on the labelled pixels (nearest-neighbour rotation of the labels)
    assert (images[~fg] < 0.5).mean() > 0.97 and (images[fg] > 0.5).mean() > 0.8


def test_broden_folder_round_trip(tmp_path: Path) -> None:
    truth = write_pattern_concepts(tmp_path, 12, split="test", seed=1)
    dataset = BrodenDataset(tmp_path)
    assert dataset.names == [*CONCEPTS["object"], *CONCEPTS["part"]] and len(dataset) == 12
    assert dataset.label_category == ["object"] * 3 + ["part"] * 8
    read = {name: np.zeros((12, 28, 28), bool) for name in dataset.names}
    for i in range(12):
        for c, mask in dataset.concept_masks(i):
            assert mask is not None
            read[dataset.names[c]][i] |= mask
    for name in dataset.names:
        assert np.array_equal(read[name], truth[name]), name
    images, types, _ = concept_boards("test", 1, 12)
    grey = np.asarray(dataset.image(5).convert("L"), np.float32) / 255
    np.testing.assert_allclose(grey, np.clip(images[5], 0, 1), atol=1 / 255)
    types_seen = truth["type 2 (seed)"] | truth["type 3"] | truth["type 4 (terminal)"]
    assert np.array_equal(types_seen, types > 1)
