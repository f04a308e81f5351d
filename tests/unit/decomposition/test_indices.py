"""Index files: the released ones load; bad ones are refused with an error naming the problem."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from xai_serve.decomposition.indices import IndexFileError, load_indices, save_indices


def test_released_files_load_and_nest(released) -> None:
    sets = {k: load_indices(p, num_classes=10, num_filters=64) for k, p in released.index_files.items()}
    assert sets[5][0] == [7, 23, 54, 50, 22]
    for c in range(10):  # 5 in 10 in 20 for every class [docs/methods.md#decomp-filters]
        assert set(sets[5][c]) <= set(sets[10][c]) <= set(sets[20][c])


def test_round_trip(tmp_path: Path) -> None:
    save_indices(tmp_path / "i.json", [[1, 2], [3]])
    assert json.loads((tmp_path / "i.json").read_text()) == {"0": [1, 2], "1": [3]}
    assert load_indices(tmp_path / "i.json", num_classes=2, num_filters=4) == [[1, 2], [3]]


@pytest.mark.parametrize(
    ("text", "match"),
    [
        ("{not json", "not JSON"),
        ("[1, 2]", "JSON object"),
        (
            json.dumps({str(c): [c] for c in range(9)}),
            "wrong class count: it has 9 classes, the model has 10",
        ),
        (
            json.dumps({**{str(c): [c] for c in range(10)}, "3": [64]}),
            "class 3: filter 64 is out of range 0..63",
        ),
        (json.dumps({**{str(c): [c] for c in range(10)}, "2": [-1]}), "class 2: filter -1 is out of range"),
        (json.dumps({**{str(c): [c] for c in range(10)}, "4": [1, 1]}), "class 4: filter 1 is listed twice"),
        (json.dumps({**{str(c): [c] for c in range(10)}, "5": []}), "class 5 has no filters"),
        (
            json.dumps({**{str(c): [c] for c in range(10)}, "6": ["a"]}),
            "class 6: filter 'a' is not an integer",
        ),
        (json.dumps({**{str(c): [c] for c in range(9)}, "x": [1]}), "class key 'x'"),
        (json.dumps({**{str(c): [c] for c in range(9)}, "10": [1]}), "class 9 is missing"),
    ],
)
def test_bad_files_name_the_problem(tmp_path: Path, text: str, match: str) -> None:
    p = tmp_path / "bad.json"
    p.write_text(text)
    with pytest.raises(IndexFileError, match=match):
        load_indices(p, num_classes=10, num_filters=64)


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(IndexFileError, match="not found"):
        load_indices(tmp_path / "none.json")
