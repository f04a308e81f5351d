"""The benchmark harness: ``python -m bench --quick|--full [--only SUITE ...]`` (``make bench``).

Imports every benchmark module below, calls its ``run(quick) -> list[Measurement]``, fills ratios
to the baselines measured in the same run and whether each target was met, writes the run to
``bench/results/<timestamp>.json`` and regenerates ``BENCHMARKS.md``. A module that is missing or
raises is recorded as such and the other suites still run. With ``--only``, the suites not run are
carried over from the newest earlier results file that has them, so BENCHMARKS.md stays complete.
"""

from __future__ import annotations

import argparse
import datetime as dt
import importlib
import json
import shlex
import sys
import time
import traceback
from pathlib import Path
from typing import Any

from bench import environment, report
from bench.common import Measurement, add_ratios

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "bench" / "results"
BENCHMARKS_MD = ROOT / "BENCHMARKS.md"

# suite name -> module (bench.<name>), in the order they run and appear in BENCHMARKS.md
SUITES = [
    "engine",
    "targets",
    "serving",
    "engines",
    "faithfulness",
    "memory",
    "torchserve_stock",
    "load",
    "dissection",
    "console",
    "live",
    "vit",
]


def _doc(module: Any) -> str:
    text = (module.__doc__ or "").strip()
    return text.split("\n\n", 1)[0].replace("\n", " ")


def run_suite(name: str, quick: bool) -> dict[str, Any]:
    t0 = time.perf_counter()
    entry: dict[str, Any] = {"status": "ok", "error": None, "measurements": [], "doc": ""}
    try:
        module = importlib.import_module(f"bench.{name}")
    except ModuleNotFoundError as exc:
        if exc.name == f"bench.{name}":
            entry.update(status="missing", error=f"bench/{name}.py does not exist yet")
        else:
            entry.update(status="error", error=traceback.format_exc())
        entry["seconds"] = time.perf_counter() - t0
        return entry
    except Exception:
        entry.update(status="error", error=traceback.format_exc(), seconds=time.perf_counter() - t0)
        return entry
    entry["doc"] = _doc(module)
    try:
        rows: list[Measurement] = list(module.run(quick))
        report.fill_met(add_ratios(rows))
        entry["measurements"] = [r.as_dict() for r in rows]
    except Exception:
        entry.update(status="error", error=traceback.format_exc())
    entry["seconds"] = time.perf_counter() - t0
    return entry


def _earlier_suite(name: str, exclude: Path | None) -> tuple[str, dict[str, Any]] | None:
    """The newest earlier results file holding ``name`` with measurements."""
    if not RESULTS.is_dir():
        return None
    for path in sorted(RESULTS.glob("*.json"), reverse=True):
        if exclude is not None and path.resolve() == exclude.resolve():
            continue
        try:
            data = json.loads(path.read_text())
        except (OSError, json.JSONDecodeError):
            continue
        suite = data.get("suites", {}).get(name)
        if suite and suite.get("measurements") and suite.get("status") in ("ok", "error"):
            return data.get("timestamp", path.stem), suite
    return None


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__.split("\n\n")[0])
    mode = parser.add_mutually_exclusive_group()
    mode.add_argument("--quick", action="store_true", help="a few minutes: fewer runs and cases (default)")
    mode.add_argument("--full", action="store_true", help="every case, more repetitions")
    parser.add_argument("--only", nargs="+", choices=SUITES, metavar="SUITE", help=f"subset of {SUITES}")
    parser.add_argument("--no-markdown", action="store_true", help="write the JSON only, leave BENCHMARKS.md")
    parser.add_argument("--out", type=Path, default=RESULTS, help="results directory (default bench/results)")
    args = parser.parse_args(argv)
    quick = not args.full
    suites = args.only or SUITES

    stamp = dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%SZ")
    given = argv if argv is not None else sys.argv[1:]
    command = "python -m bench " + " ".join(shlex.quote(a) for a in given)
    run: dict[str, Any] = {
        "timestamp": stamp,
        "mode": "quick" if quick else "full",
        "command": command.strip(),
        **environment.describe(),
        "suites": {},
    }
    out_file = args.out / f"{stamp}.json"
    run["results_file"] = str(out_file.relative_to(ROOT)) if out_file.is_relative_to(ROOT) else str(out_file)
    try:
        for name in suites:
            print(f"[bench] {name} ...", flush=True)
            entry = run_suite(name, quick)
            run["suites"][name] = entry
            print(
                f"[bench] {name}: {entry['status']} in {entry['seconds']:.1f} s, "
                f"{len(entry['measurements'])} rows",
                flush=True,
            )
            if entry["error"]:
                print(entry["error"], file=sys.stderr, flush=True)
    finally:
        servers = sys.modules.get("bench.servers")
        if servers is not None:
            servers.stop_all()

    args.out.mkdir(parents=True, exist_ok=True)
    out_file.write_text(json.dumps(run, indent=1, default=str))
    print(f"[bench] results: {out_file}")
    if not args.no_markdown:
        shown = dict(run)
        shown["suites"] = {}
        for name in SUITES:
            if name in run["suites"]:
                shown["suites"][name] = run["suites"][name]
                continue
            earlier = _earlier_suite(name, out_file)
            if earlier is not None:
                shown["suites"][name] = {**earlier[1], "status": "earlier", "from_run": earlier[0]}
        BENCHMARKS_MD.write_text(report.render(shown))
        print(f"[bench] wrote {BENCHMARKS_MD}")
    failed = [n for n, s in run["suites"].items() if s["status"] == "error"]
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
