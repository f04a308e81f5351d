"""One-paragraph verdicts of the evaluation reports, read back from a run's CSV outputs.

Each function takes a finished run directory and says what a reader looks for first (which method
is most faithful by AOPC, whether each method passes the randomisation check, ...).
"""

from __future__ import annotations

import csv
import math
from pathlib import Path

# A method passes the randomisation sanity check when its maps of the fully randomised model
# are clearly unlike those of the trained model: mean |Spearman| of absolute maps below this.
RANDOMISATION_PASS = 0.5


def _rows(path: Path) -> list[dict[str, str]]:
    if not path.exists():
        return []
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def _f(v: str) -> float:
    try:
        return float(v)
    except (TypeError, ValueError):
        return math.nan


def basic(root: Path) -> str | None:
    rows = {r["stat"]: r for r in _rows(root / "basic_summary.csv") if "stat" in r}
    per_class = _rows(root / "basic.csv")
    if "mean" not in rows:
        return None
    acc = _f(rows["mean"].get("accuracy", ""))
    text = f"Accuracy {acc:.1%} on {len(_rows(root / 'predictions.csv'))} samples."
    if per_class and "f1" in per_class[0]:
        worst = min(per_class, key=lambda r: _f(r["f1"]))
        text += f" Weakest class: {worst.get('class', worst.get('label', '?'))} (F1 {_f(worst['f1']):.2f})."
    return text


def faithfulness(root: Path) -> str | None:
    rows = _rows(root / "summary.csv")
    parts = []
    for kind in ("pixel", "region"):
        morf = [r for r in rows if r["kind"] == kind and r["order"] == "morf" and r["metric"] == "aopc"]
        if not morf:
            continue
        ranked = sorted(morf, key=lambda r: -_f(r["mean"]))
        best = ranked[0]
        order = ", ".join(f"{r['method']} {_f(r['mean']):.3f}" for r in ranked)
        parts.append(
            f"By {kind} AOPC (MoRF, higher = more faithful), the most faithful method is "
            f"<b>{best['method']}</b> (ranking: {order})."
        )
        abpc = [r for r in rows if r["kind"] == kind and r["metric"] == "abpc"]
        bad = [r["method"] for r in abpc if _f(r["mean"]) <= 0]
        if abpc:
            parts.append(
                "Every method removes relevant features before irrelevant ones (ABPC > 0)."
                if not bad
                else f"Not better than its reverse order (ABPC <= 0): {', '.join(bad)}."
            )
    return " ".join(parts) or None


def randomisation(root: Path) -> str | None:
    rows = [r for r in _rows(root / "summary.csv") if r.get("mode") == "cascading"]
    if not rows:
        rows = _rows(root / "summary.csv")
    if not rows:
        return None
    verdicts = []
    for m in dict.fromkeys(r["method"] for r in rows):
        top = max((r for r in rows if r["method"] == m), key=lambda r: int(r["level"]))
        s = _f(top["spearman_abs_mean"])
        ok = abs(s) < RANDOMISATION_PASS
        verdicts.append(f"{m} {'passes' if ok else '<b>fails</b>'} (|Spearman| {s:.2f})")
    return (
        f"Parameter randomisation ({rows[0]['mode']}, all layers randomised; a method passes when its map "
        f"changes, mean |Spearman| of absolute maps < {RANDOMISATION_PASS}): " + "; ".join(verdicts) + "."
    )


def feature_removal(root: Path) -> str | None:
    rows = _rows(root / "summary.csv")
    drops = []
    for m in dict.fromkeys(r["method"] for r in rows):
        v = {r["variant"]: _f(r["target_confidence_mean"]) for r in rows if r["method"] == m}
        if {"original", "most_removed", "least_removed"} <= set(v):
            drops.append((v["original"] - v["most_removed"], v["original"] - v["least_removed"], m))
    if not drops:
        return None
    drops.sort(reverse=True)
    best = drops[0]
    return (
        f"Removing the most relevant pixels lowers the target confidence most for <b>{best[2]}</b> "
        f"(by {best[0]:.3f}; least relevant removed: {best[1]:.3f}). "
        + " ".join(f"{m}: {a:.3f} vs {b:.3f}." for a, b, m in drops[1:])
    )


def saliency_images(root: Path) -> str | None:
    """How many maps were exported, and which are blank (a constant map renders as one grey level)."""
    import json

    import numpy as np
    from PIL import Image

    path = root / "images.json"
    if not path.exists():
        return None
    entries = json.loads(path.read_text())["images"]
    blank: dict[str, int] = {}
    for e in entries:
        with Image.open(root / e["files"][0]) as im:  # the colour rendering
            a = np.asarray(im)
        if a.size and int(a.max()) == int(a.min()):
            blank[e["method"]] = blank.get(e["method"], 0) + 1
    methods = list(dict.fromkeys(e["method"] for e in entries))
    n = len({e["index"] for e in entries})
    files = sum(len(e["files"]) for e in entries)
    text = (
        f"{files} PNGs for {n} samples and {len(methods)} method(s) ({', '.join(methods)}): colour, "
        "grey-scale (P99-clipped), positive and negative saliency per sample, listed in images.json."
    )
    if blank:
        text += " <b>Constant maps</b> (rendered blank): " + ", ".join(
            f"{m} {k}/{n}" for m, k in blank.items()
        )
        text += "."
    else:
        text += " No map is constant."
    return text
