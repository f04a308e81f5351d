"""pattern_digits (docs/methods.md#gpt-data): golden values from a literal, cell-by-cell reading of the spec,
and the dataset's invariants."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from xai_serve.data import load_dataset
from xai_serve.data import pattern_digits as pd
from xai_serve.data import pattern_growth as pg
from xai_serve.errors import InvalidArgumentError

L = 28
J = [[0, 1], [1, 1], [1, 0], [1, -1], [0, -1], [-1, -1], [-1, 0], [-1, 1]]
G0 = [[0] * 8, [2, 3, 4, 0, 0, 0, 0, 0], [0, 0, 0, 0, 0, 0, 0, 2], [0] * 8]
BSG = [[(j - i) % 8 + 1 for j in range(8)] for i in range(8)]  # roll([1..8], i)
GE = [[G0[i][BSG[k][b] - 1] for b in range(8)] for i in range(4) for k in range(8)]  # row k + 8*i


def literal_develop(t: int, board: np.ndarray) -> np.ndarray:
    """The spec's compenv/growth1, one cell at a time in plain Python (slow, obviously right)."""
    cells = [[int(v) for v in row] for row in board]
    for _ in range(t):
        env = [
            [[GE[cells[(r + J[k][1]) % L][(c - J[k][0]) % L] - 1][k] for c in range(L)] for r in range(L)]
            for k in range(8)
        ]
        new = [row[:] for row in cells]
        for r in range(L):
            for c in range(L):
                if cells[r][c] > 8:
                    continue
                bonds = [env[k][r][c] for k in range(8)]
                n_eff = sum(b > 0 for b in bonds)
                if n_eff == 1:
                    d = sum(bonds)
                    e = sum(k + 1 for k in range(8) if bonds[k] > 0)
                    new[r][c] = 8 * (d - 1) + e
                elif n_eff in (2, 3) or n_eff >= 6:
                    new[r][c] = 31
        cells = new
    return np.array(cells)


def test_tables() -> None:
    assert pg.BSG.tolist() == BSG
    assert pg.GE.tolist() == GE
    assert pg.GE.shape == (32, 8) and pg.NGE == 32
    # code/decode round trip over every code
    i, k = pg.decode(np.arange(1, 33))
    assert (pg.code(i, k) == np.arange(1, 33)).all()
    assert i.tolist() == [t for t in range(1, 5) for _ in range(8)]


# (class, growth time, rotation, [(row, col, code)] of the seed board, grown foreground pixels,
#  terminal cells, image sum) for np.random.default_rng(2026) drawing classes 0..9 in turn
GOLDEN = [
    (0, 8, -6.4213, [(13, 7, 11)], 18, 4, 18.0),
    (1, 9, -2.59, [(6, 14, 13)], 20, 5, 20.0),
    (2, 11, 5.8104, [(9, 14, 12), (15, 9, 10)], 48, 7, 47.9957),
    (3, 8, 3.0557, [(9, 15, 13), (15, 7, 10), (16, 7, 11)], 55, 12, 55.0),
    (4, 10, 9.3392, [(7, 9, 11), (9, 16, 13), (15, 11, 9)], 58, 14, 58.0),
    (5, 8, 5.0546, [(11, 11, 11), (20, 8, 11), (21, 12, 9)], 44, 9, 44.0002),
    (6, 9, -1.0324, [(4, 7, 11), (4, 12, 12), (12, 7, 9), (13, 13, 10)], 66, 10, 65.9962),
    (7, 9, -5.4733, [(4, 3, 11), (4, 9, 12), (4, 16, 13), (12, 4, 9)], 63, 13, 62.9937),
    (8, 10, -9.7432, [(8, 9, 11), (14, 14, 16), (21, 7, 10), (21, 16, 15)], 76, 13, 76.0002),
    (9, 8, -6.092, [(13, 7, 10), (13, 15, 16), (14, 8, 11), (14, 17, 14), (15, 7, 12)], 79, 13, 79.0),
]


def test_golden_boards_and_images() -> None:
    rng = np.random.default_rng(2026)
    for c, t, deg, placements, grown, terminal, img_sum in GOLDEN:
        seeds, t_got, deg_got = pd.class_seeds(c, rng)
        assert (t_got, round(deg_got, 4)) == (t, deg)
        got = [(int(r), int(col), int(seeds[r, col])) for r, col in zip(*np.nonzero(seeds > 1), strict=True)]
        assert got == placements
        board = pg.develop(t, seeds)
        assert (board == literal_develop(t, seeds)).all(), f"class {c}: growth differs from the spec"
        assert int((board > 1).sum()) == grown and int((board == 31).sum()) == terminal
        img = pd.render(board, deg_got)
        assert img.shape == (28, 28) and round(float(img.sum()), 4) == img_sum


def test_batch_equals_one_by_one_and_is_deterministic() -> None:
    classes = [3, 9, 0, 7, 5, 5, 1]
    x, y, yg, ys = pd.sample_batch(classes, np.random.default_rng(7))
    rng = np.random.default_rng(7)
    for j, c in enumerate(classes):
        img, _seeds, g, s = pd.sample(c, rng)
        assert torch.allclose(x[j, 0], torch.from_numpy(img).float())
        assert (yg[j].numpy() == g).all() and (ys[j].numpy() == s).all()
    again = pd.sample_batch(classes, np.random.default_rng(7))
    assert all(torch.equal(a, b) for a, b in zip((x, y, yg, ys), again, strict=True))


def test_invariants_over_many_samples() -> None:
    classes = [c for c in range(10) for _ in range(12)]
    rng = np.random.default_rng(11)
    for c in classes:
        seeds, t, deg = pd.class_seeds(c, rng)
        board = pg.develop(t, seeds)
        assert board.min() >= 1 and board.max() <= 32
        assert int((seeds > 1).sum()) == pd.SEEDS_PER_CLASS[c]  # no placement overwrote another
        i, _k = pg.decode(seeds)
        assert set(np.unique(i)) <= {1, 2}
        img = pd.render(board, deg)
        assert (img > 0.5).sum() >= 1
    x, y, yg, ys = pd.sample_batch(classes, np.random.default_rng(12))
    assert x.shape == (120, 1, 28, 28) and x.dtype == torch.float32
    assert set(yg.unique().tolist()) == {0, 1} and ys.min() >= 0 and ys.max() <= 7
    assert (ys[yg == 0] == 0).all()  # yg/ys are zero off the seeds
    assert [int((yg[y == c] > 0).sum()) // 12 for c in range(10)] == list(pd.SEEDS_PER_CLASS)


def test_registry_splits_are_disjoint_deterministic_and_sized() -> None:
    a = load_dataset("pattern_digits", "test", seed=3, size=40)
    b = load_dataset("pattern_digits", "test", seed=3, size=40)
    v = load_dataset("pattern_digits", "val", seed=3, size=40)
    assert len(a.dataset) == 40 and a.input_shape == [1, 28, 28] and a.num_classes == 10
    assert torch.equal(a.dataset.images, b.dataset.images)
    assert not torch.equal(a.dataset.images, v.dataset.images)
    assert a.mean == [0.0] and a.std == [1.0]
    x, label = a.dataset[0]
    assert x.shape == (1, 28, 28) and isinstance(label, int)
    x2, (label2, yg, ys) = a.dataset.with_components()[0]
    assert torch.equal(x, x2) and label2 == label and yg.shape == ys.shape == (28, 28)
    skewed = load_dataset("pattern_digits", "train", seed=0, size=200, class_probs=[0] * 8 + [1, 1])
    assert set(skewed.dataset.targets.tolist()) == {8, 9}
    with pytest.raises(InvalidArgumentError):
        load_dataset("pattern_digits", "train", size=-1)
    with pytest.raises(InvalidArgumentError):
        load_dataset("pattern_digits", "train", size=5, class_probs=[1, 2])
