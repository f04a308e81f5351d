"""Explanation credentials: the ``credentials.json`` file that ``xai certify`` writes and an archive
carries (``xai archive --credentials FILE | --certify``).

Per served method it holds measured evidence of how far the method can be trusted on *this* model:

- ``sanity``: the cascading model-parameter randomisation check and its verdict by the documented
  rule of :mod:`xai_serve.evaluation.sanity_rule` (mean Spearman of the absolute maps of the
  original and of the fully randomised model, |mean| below 0.5 by default), with the whole per-level
  curve;
- ``faithfulness``: AOPC of the MoRF and LeRF perturbation curves and ABPC (AUC LeRF - AUC MoRF)
  from pixel flipping (inputs of at most ``PIXEL_FLIP_MAX_PIXELS`` pixels) or region perturbation
  (larger inputs), with their standard deviations over samples.

Beside them the file records the rule, the seed, the sample count, the dataset and split, the
software versions, the checkpoint's path and the sha256 of the weights that were measured (the
archive refuses credentials measured on other weights). This module holds the format only (no
torch): building it from the suites' summaries, writing it atomically, reading and validating it,
and the per-method summary served with every heatmap (:func:`summary`). Running the suites is
:mod:`xai_serve.evaluation.certify`.
"""

from __future__ import annotations

import copy
import json
import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from xai_serve.errors import CheckpointError

FORMAT = "xai-serve-credentials/1"
FILE_NAME = "credentials.json"
PIXEL_FLIP_MAX_PIXELS = 64 * 64  # larger inputs use region perturbation
PIXEL_FLIP_STEPS = 64  # pixel flipping removes ceil(H*W / 64) pixels per step
REGION_STEPS = 64  # region perturbation removes at most 64 tiles
SUMMARY_FIELDS = ("certified", "sanity_pass", "sanity_spearman", "aopc_morf", "aopc_lerf", "abpc")


def faithfulness_plan(input_hw: Sequence[int]) -> dict[str, Any]:
    """Pixel flipping or region perturbation, whichever the input size suits, with its steps."""
    h, w = int(input_hw[-2]), int(input_hw[-1])
    n = h * w
    if n <= PIXEL_FLIP_MAX_PIXELS:
        return {"kind": "pixel", "features_in_step": max(1, -(-n // PIXEL_FLIP_STEPS))}
    patch = max(2, min(h, w) // 16)
    return {"kind": "region", "patch_size": patch, "region_steps": REGION_STEPS}


def _finite_or_none(v: Any) -> float | None:
    try:
        f = float(v)
    except (TypeError, ValueError):
        return None
    return f if math.isfinite(f) else None


def sanity_record(
    summary_rows: Sequence[Mapping[str, Any]], method: str, layers: Sequence[str], rule: Any
) -> dict[str, Any]:
    """The sanity part of one method from the randomisation suite's summary rows (cascading)."""
    rows = sorted(
        (r for r in summary_rows if r["method"] == method and r["mode"] == "cascading"),
        key=lambda r: int(r["level"]),
    )
    if not rows:
        raise CheckpointError(f"no cascading randomisation result for method {method!r}")
    curve = [_finite_or_none(r["spearman_abs_mean"]) for r in rows]
    full = rows[-1]
    score = float(full["spearman_abs_mean"])
    ok = rule.passes(score)
    return {
        "pass": bool(ok),
        "spearman_abs": _finite_or_none(score),
        "spearman_abs_std": _finite_or_none(full["spearman_abs_std"]),
        "spearman_signed": _finite_or_none(full["spearman_mean"]),
        "ssim": _finite_or_none(full["ssim_mean"]),
        "levels": ["original", *layers],
        "spearman_abs_by_level": curve,
        "n": int(full["n"]),
    }


def faithfulness_record(summary_rows: Sequence[Mapping[str, Any]], method: str, kind: str) -> dict[str, Any]:
    """AOPC MoRF / LeRF and ABPC (mean, std) of one method from the faithfulness suite's summary."""
    out: dict[str, Any] = {"kind": kind}
    for r in summary_rows:
        if r["method"] != method or r["kind"] != kind:
            continue
        name = None
        if r["metric"] == "aopc" and r["order"] in ("morf", "lerf"):
            name = f"aopc_{r['order']}"
        elif r["metric"] == "abpc":
            name = "abpc"
        if name:
            out[name] = _finite_or_none(r["mean"])
            out[f"{name}_std"] = _finite_or_none(r["std"])
            out["n"] = int(r["n"])
    missing = [k for k in ("aopc_morf", "aopc_lerf", "abpc") if k not in out]
    if missing:
        raise CheckpointError(f"faithfulness result of {method!r} lacks {', '.join(missing)}")
    return out


def build(
    *,
    methods: Mapping[str, Mapping[str, Any]],
    rule: Mapping[str, Any],
    config: Mapping[str, Any],
    versions: Mapping[str, str],
) -> dict[str, Any]:
    """The whole document (``methods``: name -> {"sanity": ..., "faithfulness": ...})."""
    return {
        "format": FORMAT,
        **dict(config),
        "rule": dict(rule),
        "versions": dict(versions),
        "methods": {m: {"certified": True, **copy.deepcopy(dict(v))} for m, v in methods.items()},
    }


def write(path: str | Path, doc: Mapping[str, Any]) -> Path:
    """Write ``doc`` atomically (no half-written file), JSON without NaN."""
    from xai_serve.atomic import atomic_write_text

    p = Path(path)
    atomic_write_text(p, json.dumps(doc, indent=2, sort_keys=True, allow_nan=False) + "\n")
    return p


def validate(doc: Any, source: str = FILE_NAME) -> dict[str, Any]:
    """Check the structure of a credentials document; return it (CheckpointError when malformed)."""
    if not isinstance(doc, dict) or doc.get("format") != FORMAT:
        raise CheckpointError(f"{source} is not an xai-serve credentials file (format {FORMAT})")
    methods = doc.get("methods")
    if not isinstance(methods, dict) or not methods:
        raise CheckpointError(f"{source} lists no methods")
    for name, m in methods.items():
        if not isinstance(m, dict) or not isinstance(m.get("sanity"), dict):
            raise CheckpointError(f"{source}: method {name!r} has no sanity record")
        if not isinstance(m["sanity"].get("pass"), bool):
            raise CheckpointError(f"{source}: method {name!r} has no sanity verdict")
        if not isinstance(m.get("faithfulness"), dict):
            raise CheckpointError(f"{source}: method {name!r} has no faithfulness record")
    for key in ("checkpoint_sha256", "seed", "samples", "split"):
        if key not in doc:
            raise CheckpointError(f"{source} lacks {key!r}")
    return doc


def load(path: str | Path) -> dict[str, Any]:
    """Read and validate a ``credentials.json``."""
    p = Path(path)
    if not p.is_file():
        raise CheckpointError(f"credentials file not found: {p}")
    try:
        doc = json.loads(p.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise CheckpointError(f"{p} is not valid JSON: {exc}") from exc
    return validate(doc, str(p))


def summary(doc: Mapping[str, Any] | None, method: str) -> dict[str, Any]:
    """The credential served with every heatmap of ``method`` (the wire's ``Credential`` fields).

    ``certified`` is False when there is no document or it does not cover the method; scores that
    were not measurable are left out (never NaN).
    """
    entry = (doc or {}).get("methods", {}).get(method)
    if not entry:
        return {"certified": False}
    sanity, faith = entry["sanity"], entry["faithfulness"]
    out: dict[str, Any] = {"certified": True, "sanity_pass": bool(sanity["pass"])}
    for key, value in (
        ("sanity_spearman", sanity.get("spearman_abs")),
        ("aopc_morf", faith.get("aopc_morf")),
        ("aopc_lerf", faith.get("aopc_lerf")),
        ("abpc", faith.get("abpc")),
    ):
        v = _finite_or_none(value)
        if v is not None:
            out[key] = v
    return out


def failed_check(doc: Mapping[str, Any] | None, method: str) -> str | None:
    """A sentence naming the check ``method`` failed, or None when it passed or is not covered."""
    entry = (doc or {}).get("methods", {}).get(method)
    if not entry or entry["sanity"]["pass"]:
        return None
    rule = (doc or {}).get("rule", {})
    score = entry["sanity"].get("spearman_abs")
    shown = "undefined" if score is None else f"{float(score):.3f}"
    return (
        f"sanity check '{rule.get('name', 'cascading-randomisation')}' failed: Spearman of the absolute "
        f"maps of the original and the fully randomised model {shown} (its magnitude must be < "
        f"{rule.get('threshold', 'the threshold')})"
    )
