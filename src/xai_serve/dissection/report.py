"""Dissection outputs: per-unit-range HTML reports with each unit's top images (unit mask overlaid),
the results CSV, the search history log and the index report (verdict first)."""

from __future__ import annotations

import csv
import html
import io
from pathlib import Path
from typing import Any

import numpy as np

from xai_serve.atomic import atomic_write_bytes, atomic_write_text
from xai_serve.dissection.layout import (
    COLUMNS,
    HISTORY,
    REPORT,
    REPORT_PAGES,
    RESULTS,
    part_name,
    part_ranges,
)
from xai_serve.dissection.units import upsample

SCORE_THRESHOLD = 0.04  # IoU above which a unit counts as interpretable (docs/methods.md#compexp-defaults)
DISPLAY = 112  # pixels per top image in the strips
_STYLE = (
    "body{font-family:sans-serif;margin:1.5em;max-width:1100px}table{border-collapse:collapse}"
    "td,th{border:1px solid #ccc;padding:3px 8px;text-align:left}.unit{margin:1em 0}"
    "code{background:#f3f3f3;padding:1px 4px}"
)


#: rows of the index page's ranked table (every unit is in the results CSV)
TABLE_ROWS = 100


def _strip(
    dataset: Any, images: list[int], maps: np.ndarray, threshold: float, mask_shape: tuple[int, int]
) -> bytes:
    """Top images side by side; pixels outside the unit mask are dimmed, the mask outlined in yellow."""
    from PIL import Image

    tiles = []
    for n, fmap in zip(images, maps, strict=True):
        img = np.asarray(dataset.image(n).resize((DISPLAY, DISPLAY), Image.Resampling.BILINEAR), np.float32)
        mask = upsample(fmap[None], mask_shape)[0] > threshold
        scaled = Image.fromarray(mask.astype(np.uint8) * 255).resize(
            (DISPLAY, DISPLAY), Image.Resampling.NEAREST
        )
        big = np.asarray(scaled) > 0
        shown = np.where(big[..., None], img, img * 0.3)
        edge = big & ~(np.roll(big, 1, 0) & np.roll(big, -1, 0) & np.roll(big, 1, 1) & np.roll(big, -1, 1))
        shown[edge] = (255, 220, 0)
        tiles.append(np.clip(shown, 0, 255).astype(np.uint8))
    if not tiles:
        tiles = [np.zeros((DISPLAY, DISPLAY, 3), np.uint8)]
    gap = np.full((DISPLAY, 4, 3), 255, np.uint8)
    row = np.concatenate([t for tile in tiles for t in (tile, gap)][:-1], axis=1)
    buf = io.BytesIO()
    Image.fromarray(row).save(buf, format="PNG")
    return buf.getvalue()


def write_unit_range(
    out: Path,
    config: Any,
    lo: int,
    hi: int,
    units: list[dict[str, Any]],
    feats: np.ndarray,
    thresh: np.ndarray,
    mask_shape: tuple[int, int],
) -> None:
    from xai_serve.data.broden import BrodenDataset

    dataset = BrodenDataset(config.broden, index=config.index, limit=config.limit)
    body = [
        f"<h1>Layer {html.escape(config.layer)}: units {lo}..{hi - 1}</h1>",
        f"<p><a href='../report.html'>all units</a>. Top {config.top_images} images per unit by peak "
        "activation; the unit's mask (activation upsampled, above the threshold) is bright and outlined.</p>",
    ]
    for u in units:
        unit = u["unit"]
        png = _strip(
            dataset, u["top_images"], np.asarray(feats[u["top_images"], unit]), thresh[unit], mask_shape
        )
        atomic_write_bytes(out / REPORT_PAGES / "img" / f"unit_{unit:05d}.png", png)
        body.append(
            f"<div class='unit' id='unit{unit}'><h3>unit {unit}: <code>{html.escape(u['formula'])}</code> "
            f"IoU {u['iou']:.4f}</h3><p>best single concept <code>{html.escape(u['single'])}</code> "
            f"IoU {u['single_iou']:.4f}; formula length {u['length']}; mask pixels {u['mask_pixels']}</p>"
            f"<img src='img/unit_{unit:05d}.png' alt='unit {unit} top images'></div>"
        )
    page = _page(f"dissection {config.layer} units {lo}..{hi - 1}", body)
    atomic_write_text(out / REPORT_PAGES / f"{part_name(lo, hi)}.html", page)


def _page(title: str, body: list[str]) -> str:
    return (
        f"<!doctype html><html><head><meta charset='utf-8'><title>{html.escape(title)}</title>"
        f"<style>{_STYLE}</style></head><body>\n" + "\n".join(body) + "\n</body></html>\n"
    )


def write_results(out: Path, config: Any, units: list[dict[str, Any]], n_units: int) -> None:
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(["layer", *COLUMNS])
    for u in units:
        writer.writerow([config.layer] + [repr(u[c]) if isinstance(u[c], float) else u[c] for c in COLUMNS])
    atomic_write_text(out / RESULTS, buf.getvalue())
    atomic_write_text(out / HISTORY, "".join(line + "\n" for u in units for line in u["history"]))

    ious = np.array([u["iou"] for u in units]) if units else np.zeros(0)
    singles = np.array([u["single_iou"] for u in units]) if units else np.zeros(0)
    good = int((ious >= SCORE_THRESHOLD).sum())
    ranked = sorted(units, key=lambda u: (-u["iou"], u["unit"]))
    ranges = part_ranges(n_units, config.units_per_part)
    page_of = {u: part_name(lo, hi) for lo, hi in ranges for u in range(lo, hi)}
    shown = f" (the top {TABLE_ROWS} shown)" if len(ranked) > TABLE_ROWS else ""
    body = [
        f"<h1>Dissection of {html.escape(config.layer)}</h1>",
        f"<p><b>{good} of {n_units} units interpretable</b> (formula IoU &ge; {SCORE_THRESHOLD}); mean IoU "
        f"{ious.mean() if ious.size else 0:.4f} with formulas of up to {config.max_length} concepts vs "
        f"{singles.mean() if singles.size else 0:.4f} for the best single concept.</p>",
        f"<p>Units ranked by formula IoU{shown}; "
        f"every unit: <a href='{RESULTS}'>{RESULTS}</a>, the search: <a href='{HISTORY}'>{HISTORY}</a>.</p>",
        "<table><tr><th>unit</th><th>formula</th><th>IoU</th><th>single concept</th><th>IoU</th></tr>",
    ]
    for u in ranked[:TABLE_ROWS]:
        link = f"report/{page_of[u['unit']]}.html#unit{u['unit']}"
        body.append(
            f"<tr><td><a href='{link}'>{u['unit']}</a></td><td><code>{html.escape(u['formula'])}</code></td>"
            f"<td>{u['iou']:.4f}</td><td>{html.escape(u['single'])}</td><td>{u['single_iou']:.4f}</td></tr>"
        )
    body.append("</table><h2>Unit ranges</h2><ul>")
    body += [
        f"<li><a href='report/{part_name(lo, hi)}.html'>units {lo}..{hi - 1}</a></li>" for lo, hi in ranges
    ]
    body.append("</ul>")
    body.append(
        "<details><summary>Run configuration</summary>"
        f"<p>Model {html.escape(config.checkpoint)}, probing set {html.escape(config.broden)} "
        f"({html.escape(config.index)}), quantile {config.quantile}, beam {config.beam}, penalty "
        f"{config.penalty}, formulas up to {config.max_length} concepts.</p></details>"
    )
    atomic_write_text(out / REPORT, _page(f"dissection {config.layer}", body))


def read_results(path: str | Path) -> list[dict[str, Any]]:
    """Rows of a results CSV with numeric columns converted."""
    from xai_serve.errors import InvalidArgumentError

    path = Path(path)
    if not path.is_file():
        raise InvalidArgumentError(
            f"dissection results {path} do not exist (expected a results.csv of `xai dissect`)"
        )
    with open(path, newline="") as f:
        rows = list(csv.DictReader(f))
    need = {"layer", "unit", "formula", "iou"}
    if not rows or not need <= set(rows[0]):
        raise InvalidArgumentError(f"{path} is not a dissection results CSV (columns {sorted(need)} needed)")
    out = []
    for r in rows:
        out.append({**r, "unit": int(r["unit"]), "iou": float(r["iou"])})
    return out
