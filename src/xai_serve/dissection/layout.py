"""The files of a dissection run and its parts (on the run-directory layout of
:mod:`xai_serve.jobs.rundir`: run.json, ``parts/``)::

    run.json                  configuration (compared when the run is continued), versions
    activations.npy/.json     the layer's activations (memory map) and their shape (activations.py)
    thresholds.npy            per-unit thresholds T[u]
    concepts/                 the probing set's concept masks, packed (ConceptStore)
    parts/units_A-B.json      results, history and top images of units A..B-1 (one atomic file each)
    report/units_A-B.html     the unit range's HTML report (+ report/img/unit_U.png)
    results.csv  history.log  report.html  summary.json     assembled from all parts (merge)

Part ``i`` covers units ``[i*P, (i+1)*P)``.
"""

from __future__ import annotations

THRESHOLDS = "thresholds.npy"
CONCEPTS = "concepts"
RESULTS = "results.csv"
HISTORY = "history.log"
REPORT = "report.html"
REPORT_PAGES = "report"
SUMMARY = "summary.json"
COLUMNS = [
    "unit",
    "formula",
    "iou",
    "single",
    "single_iou",
    "length",
    "primitives",
    "mask_pixels",
    "category",
]


def part_ranges(n_units: int, per_part: int) -> list[tuple[int, int]]:
    """The unit range ``(lo, hi)`` of every part, in part order."""
    return [(lo, min(n_units, lo + per_part)) for lo in range(0, n_units, per_part)]


def part_name(lo: int, hi: int) -> str:
    """The name of the part (and of its report page) covering units ``lo..hi-1``."""
    return f"units_{lo:05d}-{hi:05d}"
