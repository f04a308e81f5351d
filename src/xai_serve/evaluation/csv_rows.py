"""Reading a finished run's CSV outputs back (for the suites' report verdicts)."""

from __future__ import annotations

import csv
import math
from pathlib import Path


def read_rows(path: Path) -> list[dict[str, str]]:
    """The rows of a CSV file as dicts (empty when the file does not exist)."""
    if not path.exists():
        return []
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def as_float(v: str) -> float:
    """A CSV cell as a float (NaN when empty or not a number)."""
    try:
        return float(v)
    except (TypeError, ValueError):
        return math.nan
