"""The page's JSON of an explanation: overlays and ``.npy`` as data URLs that decode back to the values, the
colour bar's range, the evidence (decomposed filters, dissected units, the component) and the prediction's
per-pixel maps, all plain JSON."""

from __future__ import annotations

import base64
import io
import json

import numpy as np
from PIL import Image
from xai_client.results import (
    ClassScore,
    Component,
    Credential,
    Explanation,
    FilterEvidence,
    Heatmap,
    Prediction,
    UnitEvidence,
)

from xai_serve.console.panels import FILTERS_SHOWN, explanation_dict


def _decode(url: str) -> bytes:
    return base64.b64decode(url.split(",", 1)[1])


def test_explanation_json_round_trips_values_and_evidence() -> None:
    rng = np.random.default_rng(0)
    values = rng.normal(size=(1, 12, 10)).astype(np.float32)
    filters = [FilterEvidence(i, float(10 - i), rng.random((12, 10)).astype(np.float32)) for i in range(9)]
    units = [UnitEvidence("layer4", 7, 0.5, "(stripes OR dots) AND NOT grass", 0.21)]
    cred = Credential(True, True, 0.1, 0.3)
    heatmaps = [
        Heatmap("decomposed", 3, values, None, True, "heatmap", credential=cred, filters=filters),
        Heatmap("gradcam", 3, np.abs(values), None, False, "heatmap", units=units, layer="layer4"),
        Heatmap("gradient", 2, values, None, True, "heatmap", component=Component("yg", 4, 5, 2)),
    ]
    maps = {"yg": rng.integers(0, 4, size=(12, 10)).astype(np.uint8)}
    e = Explanation("m", Prediction([ClassScore(3, "three", 0.9, 4.0)], maps), heatmaps, {"total_ms": 1.0})
    image = (rng.random((24, 20, 3)) * 255).astype(np.uint8)
    doc = json.loads(json.dumps(explanation_dict(e, image)))  # plain JSON throughout

    assert doc["prediction"]["top"][0] == {"index": 3, "label": "three", "probability": 0.9, "logit": 4.0}
    assert np.array_equal(np.asarray(doc["prediction"]["outputs"]["yg"]), maps["yg"])
    dec, cam, grad = doc["heatmaps"]
    np.testing.assert_array_equal(np.load(io.BytesIO(_decode(dec["npy"]))), values)
    assert Image.open(io.BytesIO(_decode(dec["png"]))).size == (10, 12)
    m = float(np.abs(values).max())
    assert dec["range"] == [-m, m] and dec["signed"] is True
    assert dec["credential"]["badge"] is True and dec["credential"]["aopc_morf"] == 0.3
    assert [f["filter"] for f in dec["filters"]] == list(range(FILTERS_SHOWN))
    assert all(f["png"].startswith("data:image/png;base64,") for f in dec["filters"])
    assert cam["range"][0] >= 0 and cam["layer"] == "layer4"
    assert cam["units"][0]["formula"] == "(stripes OR dots) AND NOT grass"
    assert "because of unit 7" in cam["concepts"]
    assert grad["component"] == "yg:4,5:2" and grad["credential"] is None
    assert dec["colour_bar"] != cam["colour_bar"]  # diverging vs sequential
