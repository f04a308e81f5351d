"""The demo's decomposed section on a digits ResNet-20 checkpoint (7x7 last stage): the accuracies it
reports equal a direct forward of the original and the decomposed model, and the filter maps it
draws have spatial extent."""

from __future__ import annotations

import copy
import json
import time
from pathlib import Path

import torch

from xai_serve.app.decomposition_section import PAGE, decomposed_section
from xai_serve.decomposition.indices import load_indices
from xai_serve.decomposition.source import open_model, open_split
from xai_serve.explain.decomposed import DecomposedAttribution, DecomposedExplainer
from xai_serve.models.decomposed import decompose


def test_section_writes_page_and_figures(tmp_path: Path, released) -> None:
    ckpt = released.write_digits_resnet20_checkpoint(tmp_path / "ckpt")
    out = tmp_path / "demo"
    tic = time.perf_counter()
    figures = decomposed_section(ckpt, out, log=lambda _m: None, limit=300)
    assert time.perf_counter() - tic < 60
    indices = load_indices(out / "decomposed_indices.json", num_classes=10, num_filters=64)
    assert all(len(s) == 5 for s in indices) and figures["finite"] and len(figures["filters"]) == 5
    assert json.loads((out / "decomposed.json").read_text()) == figures

    model, _card = open_model(ckpt)
    test = open_split("digits", "test", root=None, channels=1)
    xs = torch.stack([test.dataset[i][0] for i in range(300)])
    ys = torch.tensor([int(test.dataset[i][1]) for i in range(300)])
    dec = decompose(copy.deepcopy(model), indices).eval()
    with torch.no_grad():
        assert figures["original_accuracy"] == int((model(xs).argmax(1) == ys).sum()) / 300
        hits = dec(xs).argmax(1) == ys
    assert figures["decomposed_accuracy"] == int(hits.sum()) / 300
    # the explained image: the first the decomposed model gets right
    assert figures["image"] == (int(hits.nonzero()[0]) if hits[:100].any() else 0)

    assert figures["map_size"] == [7, 7]
    a = DecomposedExplainer(dec).attribute(xs[figures["image"]][None], "predicted")
    assert isinstance(a, DecomposedAttribution)
    assert a.filters[0].filters.tolist() == figures["filters"]
    spread = a.filters[0].maps.flatten(1)
    assert ((spread.max(1).values - spread.min(1).values) > 0).all()  # no uniform square

    page = (out / PAGE).read_text()
    assert "decomposed_explanation.png" in page and (out / "decomposed_explanation.png").stat().st_size > 0
    assert "The filter maps are 7x7 at layer3" in page and "is uniform" not in page
