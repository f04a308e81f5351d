"""The output files of an evaluation run: CSV tables and JSON documents, each written atomically.

The run directory itself (run.json, the per-batch parts, resuming) is :mod:`xai_serve.jobs.rundir`.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import numpy as np

from xai_serve.atomic import atomic_write_text


def write_json(path: Path, obj: Any) -> None:
    atomic_write_text(path, json.dumps(obj, indent=2, sort_keys=True, allow_nan=True) + "\n")


def _cell(v: Any) -> Any:
    if v is None:
        return ""
    if isinstance(v, float | np.floating):
        return repr(float(v))
    if isinstance(v, np.integer):
        return int(v)
    return v


def write_csv(path: Path, rows: Iterable[Mapping[str, Any]], columns: list[str] | None = None) -> None:
    """Write dict rows as CSV (floats with full precision, ``None`` as empty), atomically."""
    rows = list(rows)
    cols = columns or (list(rows[0]) if rows else [])
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=cols, lineterminator="\n", extrasaction="ignore")
    w.writeheader()
    for r in rows:
        w.writerow({k: _cell(r.get(k)) for k in cols})
    atomic_write_text(path, buf.getvalue())
