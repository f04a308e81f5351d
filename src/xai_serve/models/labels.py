"""Reading a class-label file (``xai import --labels``) in the formats models are shipped with.

- a JSON list ``["cat", "dog"]``;
- a JSON object ``{"0": "cat", "1": "dog"}`` (TorchServe's ``index_to_name.json``; the value may also be
  a ``[wnid, name]`` pair as in ImageNet's ``imagenet_class_index.json``: the name is kept);
- Places365's ``categories_places365.txt``: ``/a/abbey 0`` lines, a name and its index (the
  ``/letter/`` directory prefix is dropped: ``abbey``, ``airport_terminal``, ``field/cultivated``);
- otherwise one name per non-empty line.

Indices must be exactly ``0..N-1``; anything else is a :class:`~xai_serve.errors.InvalidArgumentError`.
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path
from typing import Any

from xai_serve.errors import InvalidArgumentError

_PLACES_LINE = re.compile(r"^(\S+)\s+(\d+)$")
_PLACES_PREFIX = re.compile(r"^/[a-z]/")


def _indexed(pairs: list[tuple[int, str]], source: str) -> list[str]:
    by_index = dict(pairs)
    if len(by_index) != len(pairs) or sorted(by_index) != list(range(len(pairs))):
        raise InvalidArgumentError(f"{source}: label indices must be 0..{len(pairs) - 1}, each once")
    return [by_index[i] for i in range(len(pairs))]


def _from_json(data: Any, source: str) -> list[str]:
    if isinstance(data, list) and all(isinstance(v, str) for v in data):
        return list(data)
    if isinstance(data, dict):
        pairs: list[tuple[int, str]] = []
        for key, value in data.items():
            if not str(key).lstrip("-").isdigit():
                raise InvalidArgumentError(f"{source}: label keys must be class indices, got {key!r}")
            if isinstance(value, list) and value and all(isinstance(v, str) for v in value):
                value = value[-1]
            if not isinstance(value, str):
                raise InvalidArgumentError(f"{source}: label of class {key} is not a string")
            pairs.append((int(key), value))
        return _indexed(pairs, source)
    raise InvalidArgumentError(
        f"{source}: a JSON label file holds a list of names or an {{index: name}} object"
    )


def parse_labels(text: str, source: str = "labels") -> list[str]:
    """The class names in ``text`` (one of the formats of this module), index order."""
    stripped = text.strip()
    if not stripped:
        raise InvalidArgumentError(f"{source}: no labels")
    if stripped[0] in "[{":
        try:
            return _from_json(json.loads(stripped), source)
        except json.JSONDecodeError as exc:
            raise InvalidArgumentError(f"{source}: not valid JSON: {exc}") from exc
    lines = [line.strip() for line in stripped.splitlines() if line.strip()]
    matches = [_PLACES_LINE.match(line) for line in lines]
    if all(m is not None for m in matches):
        pairs = [(int(m.group(2)), _PLACES_PREFIX.sub("", m.group(1))) for m in matches if m is not None]
        if sorted(i for i, _ in pairs) == list(range(len(pairs))):
            return _indexed(pairs, source)
    return lines


def read_labels(path: str | os.PathLike[str]) -> list[str]:
    """The class names of the label file ``path``."""
    path = Path(path)
    if not path.is_file():
        raise InvalidArgumentError(f"label file not found: {path}")
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise InvalidArgumentError(f"{path}: not a UTF-8 text file ({exc})") from exc
    return parse_labels(text, str(path))
