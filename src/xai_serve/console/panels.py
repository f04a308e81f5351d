"""What the console's page shows of an explanation, as JSON: per heatmap a PNG overlay and the values as a
``.npy`` (both ``data:`` URLs), the value range for the colour bar, the layer, the credential, the evidence
(decomposed filters, dissected units, the component explained), and the prediction with every per-pixel
output map (the General Pattern Theory ``yg`` / ``ys`` maps) as nested lists the page draws and makes
clickable. Pictures are drawn by :mod:`xai_client.overlay`, the client's one renderer."""

from __future__ import annotations

import base64
import dataclasses
import io
from functools import lru_cache
from typing import Any

import numpy as np
from xai_client.overlay import colourise, overlay_png, to_2d, to_png
from xai_client.results import Credential, Explanation, Heatmap, Prediction

FILTERS_SHOWN = 6


def data_url(payload: bytes, mime: str = "image/png") -> str:
    return f"data:{mime};base64,{base64.b64encode(payload).decode('ascii')}"


def npy_bytes(values: np.ndarray) -> bytes:
    buf = io.BytesIO()
    np.save(buf, np.asarray(values, dtype=np.float32))
    return buf.getvalue()


@lru_cache(maxsize=2)
def colour_bar(signed: bool) -> str:
    """The colour bar of signed (diverging, -max..+max) or unsigned (sequential, 0..max) maps: a PNG data
    URL drawn by the same colour maps as the overlays, low values on the left."""
    ramp = np.linspace(-1.0 if signed else 0.0, 1.0, 256)[None, :].repeat(12, axis=0)
    colours, _ = colourise(ramp, signed=signed)
    return data_url(to_png((colours * 255).round().astype(np.uint8)))


def credential_dict(c: Credential | None) -> dict[str, Any] | None:
    return None if c is None else {**dataclasses.asdict(c), "badge": c.badge}


def prediction_dict(p: Prediction) -> dict[str, Any]:
    return {
        "top": [dataclasses.asdict(s) for s in p.top],
        "outputs": {name: np.asarray(m).astype(int).tolist() for name, m in p.outputs.items()},
    }


def _range(values: np.ndarray, signed: bool) -> list[float]:
    flat = to_2d(values) if values.ndim >= 2 else values
    if signed:
        m = float(np.abs(flat).max()) if flat.size else 0.0
        return [-m, m]
    return [float(flat.min()) if flat.size else 0.0, float(flat.max()) if flat.size else 0.0]


def heatmap_dict(h: Heatmap, image: np.ndarray | None) -> dict[str, Any]:
    out: dict[str, Any] = {
        "method": h.method,
        "target": h.target,
        "kind": h.kind,
        "signed": h.signed,
        "layer": h.layer,
        "credential": credential_dict(h.credential),
        "stats": dict(h.stats),
        "component": str(h.component) if h.component is not None else None,
        "png": None,
        "npy": None,
        "range": None,
        "colour_bar": None,
        "shape": None,
        "filters": [],
        "units": [dataclasses.asdict(u) for u in h.units],
        "concepts": h.concepts,
    }
    if h.values is not None:
        values = np.asarray(h.values)
        png = overlay_png(image, values, signed=h.signed, kind=h.kind)
        out.update(
            png=data_url(png),
            npy=data_url(npy_bytes(values), "application/octet-stream"),
            shape=list(values.shape),
        )
        if h.kind == "heatmap":
            out.update(range=_range(values, h.signed), colour_bar=colour_bar(h.signed))
    elif h.png:
        out["png"] = data_url(h.png)
    out["filters"] = [
        {
            "filter": f.filter,
            "contribution": f.contribution,
            "png": data_url(overlay_png(image, np.asarray(f.map), signed=False)),
        }
        for f in h.filters[:FILTERS_SHOWN]
    ]
    return out


def explanation_dict(e: Explanation, image: np.ndarray | None) -> dict[str, Any]:
    return {
        "model": e.model,
        "request_id": e.request_id,
        "prediction": prediction_dict(e.prediction),
        "timings": dict(e.timings),
        "heatmaps": [heatmap_dict(h, image) for h in e.heatmaps],
    }
