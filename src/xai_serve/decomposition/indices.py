"""Index files: the Decomposing the Deep code's JSON format for class-specific filter sets,
``{"<class>": [filter, ...]}``.

:func:`load_indices` validates a file against the model's class and filter counts and raises
:class:`IndexFileError` naming the problem (not JSON, not an object, wrong class count, a class
missing, a filter out of range or repeated, an empty set); :func:`save_indices` writes atomically.
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from xai_serve.atomic import atomic_write_text
from xai_serve.errors import InvalidArgumentError

ClassFilters = list[list[int]]


class IndexFileError(InvalidArgumentError):
    """An index file (class -> influential filters) that cannot be used; the message names the problem."""


def parse_indices(
    data: Any, *, num_classes: int | None = None, num_filters: int | None = None, source: str = "index file"
) -> ClassFilters:
    """Validate decoded JSON (``{"0": [..], "1": [..], ...}``) and return the per-class lists."""
    if not isinstance(data, dict):
        raise IndexFileError(
            f"{source}: expected a JSON object mapping class -> filter list, got {type(data).__name__}"
        )
    keys: dict[int, Any] = {}
    for key, value in data.items():
        text = str(key).strip()
        if not text.isdigit():
            raise IndexFileError(f"{source}: class key {key!r} is not a non-negative integer")
        if int(text) in keys:
            raise IndexFileError(f"{source}: class {int(text)} appears twice")
        keys[int(text)] = value
    count = len(keys)
    if num_classes is not None and count != num_classes:
        raise IndexFileError(
            f"{source}: wrong class count: it has {count} classes, the model has {num_classes}"
        )
    missing = sorted(set(range(count)) - keys.keys())
    if missing:
        raise IndexFileError(f"{source}: classes must be 0..{count - 1}; class {missing[0]} is missing")
    out: ClassFilters = []
    for c in range(count):
        filters = keys[c]
        if not isinstance(filters, list):
            raise IndexFileError(
                f"{source}: class {c}: expected a list of filter indices, got {type(filters).__name__}"
            )
        if not filters:
            raise IndexFileError(f"{source}: class {c} has no filters")
        seen: set[int] = set()
        for f in filters:
            if isinstance(f, bool) or not isinstance(f, int):
                raise IndexFileError(f"{source}: class {c}: filter {f!r} is not an integer")
            if f < 0 or (num_filters is not None and f >= num_filters):
                top = f"0..{num_filters - 1}" if num_filters is not None else ">= 0"
                raise IndexFileError(f"{source}: class {c}: filter {f} is out of range {top}")
            if f in seen:
                raise IndexFileError(f"{source}: class {c}: filter {f} is listed twice")
            seen.add(f)
        out.append([int(f) for f in filters])
    return out


def load_indices(
    path: str | os.PathLike[str], *, num_classes: int | None = None, num_filters: int | None = None
) -> ClassFilters:
    """Read and validate an index file (see :func:`parse_indices`)."""
    p = Path(path)
    if not p.is_file():
        raise IndexFileError(f"index file not found: {p}")
    try:
        data = json.loads(p.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise IndexFileError(f"{p}: not JSON: {exc}") from exc
    return parse_indices(data, num_classes=num_classes, num_filters=num_filters, source=str(p))


def indices_json(indices: Sequence[Sequence[int]]) -> dict[str, list[int]]:
    """The original code's JSON object for per-class filter lists."""
    return {str(c): [int(f) for f in filters] for c, filters in enumerate(indices)}


def save_indices(path: str | os.PathLike[str], indices: Sequence[Sequence[int]]) -> None:
    """Write ``indices`` in the original code's format (atomically)."""
    atomic_write_text(path, json.dumps(indices_json(indices)) + "\n")
