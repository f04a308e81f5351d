"""Render a benchmark run (the JSON written to ``bench/results/``) as ``BENCHMARKS.md``.

A run is a dict: ``timestamp``, ``command``, ``mode``, ``machine``, ``versions`` and ``suites``
(suite name -> ``status`` "ok" | "missing" | "error" | "earlier", ``error``, ``seconds`` and
``measurements``, each a :class:`bench.common.Measurement` as a dict). Suites not run this time but
present in an earlier run are carried over with status "earlier" and the timestamp they came from.
"""

from __future__ import annotations

import math
import operator
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

from bench.common import Measurement

_TARGET = re.compile(r"^\s*(<=|>=|<|>|==)\s*([-+0-9.eE]+)\s*(x|×)?")
_OPS: dict[str, Callable[[float, float], bool]] = {
    "<=": operator.le,
    ">=": operator.ge,
    "<": operator.lt,
    ">": operator.gt,
    "==": operator.eq,
}


def evaluate_target(m: Measurement) -> bool | None:
    """``met`` for a target written as ``"<= 10 ms"`` (compares the median) or ``"<= 1.3x"``
    (compares the ratio to the baseline); ``None`` when there is no target or it is not parseable."""
    if m.target is None:
        return None
    match = _TARGET.match(m.target)
    if match is None:
        return None
    op, bound, is_ratio = _OPS[match.group(1)], float(match.group(2)), match.group(3) is not None
    value = m.ratio if is_ratio else m.median
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return None
    return bool(op(value, bound))


def fill_met(rows: list[Measurement]) -> list[Measurement]:
    for r in rows:
        if r.met is None:
            r.met = evaluate_target(r)
    return rows


def _num(x: float | None) -> str:
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return "—"
    a = abs(x)
    if a == 0:
        return "0"
    if a >= 1000:
        return f"{x:,.0f}"
    if a >= 100:
        return f"{x:.1f}"
    if a >= 1:
        return f"{x:.2f}"
    if a >= 0.01:
        return f"{x:.3f}"
    return f"{x:.2e}"


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def _met(m: dict[str, Any]) -> str:
    if m.get("met") is None:
        return ""
    return "met" if m["met"] else "**missed**"


def _table(rows: list[dict[str, Any]]) -> list[str]:
    out = [
        "| case | measured | median | q1–q3 | n | ratio | baseline | target | met |",
        "|---|---|---:|---:|---:|---:|---|---|---|",
    ]
    for m in rows:
        extra = m.get("extra") or {}
        if "error" in extra:
            median = f"error: {_cell(str(extra['error']))[:160]}"
            spread = ""
        else:
            median = f"{_num(m['median'])} {m['unit']}"
            spread = "" if m.get("q1") is None else f"{_num(m['q1'])}–{_num(m['q3'])}"
        ratio = "" if m.get("ratio") is None else f"{m['ratio']:.2f}×"
        out.append(
            f"| {_cell(m['case'])} | {_cell(m['name'])} | {median} | {spread} | {m.get('n', 1)} | {ratio} "
            f"| {_cell(m.get('baseline') or '')} | {_cell(m.get('target') or '')} | {_met(m)} |"
        )
    return out


def _notes(rows: list[dict[str, Any]]) -> list[str]:
    out = []
    for m in rows:
        note = (m.get("extra") or {}).get("note")
        if note:
            out.append(f"- *{_cell(m['case'])} / {_cell(m['name'])}*: {note}")
    return out


WHERE_TIME_GOES = Path(__file__).with_name("where_time_goes.md")


def _reason(m: dict[str, Any]) -> str:
    """Why a target was met or missed: the row's own ``extra.reason``, else the comparison itself."""
    extra = m.get("extra") or {}
    if extra.get("reason"):
        return str(extra["reason"])
    if "error" in extra:
        return "the measurement failed"
    match = _TARGET.match(m.get("target") or "")
    if match is None:
        return ""
    if match.group(3) is not None:
        value = "—" if m.get("ratio") is None else f"{m['ratio']:.2f}×"
        shown = f"ratio {value} to {m.get('baseline')}"
    else:
        shown = f"{_num(m['median'])} {m['unit']}"
    return f"{shown} {'meets' if m.get('met') else 'misses'} {m['target'].strip()}"


def _targets(run: dict[str, Any]) -> list[str]:
    """Every row with a target, across suites: measured, baseline (peer) beside it, met, reason."""
    out = [
        "| suite | case | measured | median | ratio | baseline | target | met | reason |",
        "|---|---|---|---:|---:|---|---|---|---|",
    ]
    for name, suite in run["suites"].items():
        for m in suite["measurements"]:
            if not m.get("target"):
                continue
            ratio = "" if m.get("ratio") is None else f"{m['ratio']:.2f}×"
            met = "" if m.get("met") is None else ("met" if m["met"] else "**missed**")
            out.append(
                f"| {name} | {_cell(m['case'])} | {_cell(m['name'])} "
                f"| {_num(m['median'])} {m['unit']} | {ratio} "
                f"| {_cell(m.get('baseline') or '')} | {_cell(m['target'])} | {met} | {_cell(_reason(m))} |"
            )
    return out


def render(run: dict[str, Any]) -> str:
    machine, versions = run["machine"], run["versions"]
    lines = [
        "# Benchmarks",
        "",
        "Generated by `bench/__main__.py` (do not edit by hand; re-run the command below). Every figure is a",
        "median over repeated runs with its inter-quartile spread (q1–q3), and, where a row names a",
        "baseline, its ratio to that baseline **measured in the same run** — absolute times on a shared",
        "2-core machine vary up to ~2× between runs, ratios far less.",
        "",
        f"- Run: {run['timestamp']} ({run['mode']} mode), results file `{run.get('results_file', '')}`",
        f"- Command: `{run['command']}`",
        f"- Machine: {machine.get('cpu')}, {machine.get('cores')} cores, {machine.get('ram_gib')} GiB RAM, "
        f"{machine.get('os')} {machine.get('arch')}, torch threads {machine.get('torch_threads')}",
        "- Versions: " + ", ".join(f"{k} {v if v is not None else 'n/a'}" for k, v in versions.items()),
        "",
    ]
    summary = ["| suite | status | seconds | rows |", "|---|---|---:|---:|"]
    for name, suite in run["suites"].items():
        status = suite["status"]
        if status == "earlier":
            status = f"from run {suite.get('from_run')}"
        elif suite.get("error"):
            last = (str(suite["error"]).strip().splitlines() or [""])[-1]
            status = f"{status}: {_cell(last)[:120]}"
        seconds, count = suite.get("seconds", 0), len(suite["measurements"])
        summary.append(f"| {name} | {status} | {seconds:.0f} | {count} |")
    lines += ["## Suites", "", *summary, ""]
    lines += ["## Targets", "", "Every figure with a target, beside the baseline or peer of its ratio.", ""]
    lines += [*_targets(run), ""]
    for name, suite in run["suites"].items():
        lines += [f"## {name}", ""]
        if suite.get("doc"):
            lines += [suite["doc"], ""]
        if suite["status"] == "earlier":
            lines += [f"*Not run this time; figures from run {suite.get('from_run')}.*", ""]
        if suite["status"] in ("missing", "error"):
            last = (str(suite.get("error") or "").strip().splitlines() or [""])[-1]
            lines += [f"*{suite['status']}*: `{_cell(last)}`", ""]
        rows = suite["measurements"]
        if not rows:
            continue
        cases: dict[str, list[dict[str, Any]]] = {}
        for m in rows:
            cases.setdefault(m["case"], []).append(m)
        lines += _table([m for case_rows in cases.values() for m in case_rows])
        notes = _notes(rows)
        if notes:
            lines += ["", *notes]
        lines.append("")
    if WHERE_TIME_GOES.is_file():
        lines += [WHERE_TIME_GOES.read_text().rstrip(), ""]
    return "\n".join(lines).rstrip() + "\n"
