"""Label files in the formats of models/labels.py."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from xai_serve.errors import InvalidArgumentError
from xai_serve.models.labels import parse_labels, read_labels


def test_one_name_per_line_keeps_spaces_and_skips_blank_lines() -> None:
    assert parse_labels("golden retriever\n\ntabby cat\n") == ["golden retriever", "tabby cat"]


def test_json_list_and_index_object() -> None:
    assert parse_labels(json.dumps(["a", "b"])) == ["a", "b"]
    assert parse_labels(json.dumps({"1": "b", "0": "a"})) == ["a", "b"]
    assert parse_labels(json.dumps({"0": ["n01440764", "tench"], "1": ["n01443537", "goldfish"]})) == [
        "tench",
        "goldfish",
    ]


def test_places365_categories_file() -> None:
    text = "/a/airfield 1\n/a/abbey 0\n/f/field/cultivated 2\n/a/airport_terminal 3\n"
    assert parse_labels(text) == ["abbey", "airfield", "field/cultivated", "airport_terminal"]


def test_name_index_lines_that_are_not_a_permutation_are_plain_names() -> None:
    assert parse_labels("route 66\nroom 101\n") == ["route 66", "room 101"]


@pytest.mark.parametrize(
    "text",
    [
        "",
        "{",
        json.dumps({"0": "a", "2": "b"}),
        json.dumps({"x": "a"}),
        json.dumps([1, 2]),
        json.dumps({"0": 3}),
    ],
)
def test_bad_label_files_are_refused(text: str) -> None:
    with pytest.raises(InvalidArgumentError):
        parse_labels(text)


def test_read_labels_missing_file(tmp_path: Path) -> None:
    with pytest.raises(InvalidArgumentError, match="not found"):
        read_labels(tmp_path / "labels.txt")
