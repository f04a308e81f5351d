"""Shared schema and timing helpers for every benchmark in bench/ (run by ``make bench``).

Each benchmark module exposes ``run(quick: bool) -> list[Measurement]``; the harness in
``bench/__main__.py`` collects them, writes ``bench/results/*.json`` and ``BENCHMARKS.md``.
Figures are reported as medians with their inter-quartile spread and as ratios to a baseline
measured in the same run (the machines are shared and noisy).
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any


@dataclass
class Measurement:
    suite: str  # "engine", "serving", "faithfulness", "memory", "load", ...
    case: str  # the setting, e.g. "resnet18 224x224 B=1"
    name: str  # what was measured, e.g. "ours lrp epsilon" or "captum LRP"
    unit: str  # "ms", "s", "items/s", "MiB", "%"
    median: float
    q1: float | None = None
    q3: float | None = None
    n: int = 1
    baseline: str | None = None  # ``name`` of the row in the same suite/case this is divided by
    ratio: float | None = None  # median / baseline median (filled by ``add_ratios``)
    target: str | None = None  # e.g. "<= 1.3x" ; human-readable
    met: bool | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def time_call(fn: Callable[[], object], *, warmup: int = 2, runs: int = 10) -> list[float]:
    """Wall-clock seconds of ``runs`` calls of ``fn`` after ``warmup`` untimed calls."""
    for _ in range(warmup):
        fn()
    out = []
    for _ in range(runs):
        t0 = time.perf_counter()
        fn()
        out.append(time.perf_counter() - t0)
    return out


def summarise(samples: list[float], scale: float = 1.0) -> tuple[float, float, float]:
    """(median, q1, q3) of ``samples`` multiplied by ``scale``."""
    xs = sorted(s * scale for s in samples)
    if len(xs) == 1:
        return xs[0], xs[0], xs[0]
    q = statistics.quantiles(xs, n=4, method="inclusive")
    return statistics.median(xs), q[0], q[2]


def add_ratios(rows: list[Measurement]) -> list[Measurement]:
    """Fill ``ratio`` of every row that names a baseline present in the same suite and case."""
    index = {(r.suite, r.case, r.name): r for r in rows}
    for r in rows:
        if r.baseline is not None:
            base = index.get((r.suite, r.case, r.baseline))
            if base is not None and base.median:
                r.ratio = r.median / base.median
    return rows
