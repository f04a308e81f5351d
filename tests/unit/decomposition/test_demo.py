"""The demo's decomposed section runs on a digits SimpleNet checkpoint and writes a linked page."""

from __future__ import annotations

import json
import time
from pathlib import Path

import torch

from xai_serve.decomposition.demo import PAGE, decomposed_section, link_from_report
from xai_serve.decomposition.indices import load_indices
from xai_serve.models import ModelCard, create_model


def test_section_writes_page_and_figures(tmp_path: Path) -> None:
    ckpt = tmp_path / "ckpt"
    ckpt.mkdir()
    torch.manual_seed(0)
    torch.save(create_model("simplenet_310k", num_classes=10).state_dict(), ckpt / "best.pt")
    ModelCard(
        model="simplenet_310k",
        model_kwargs={"num_classes": 10},
        dataset="digits",
        input_shape=[1, 28, 28],
        mean=[0.3],
        std=[0.4],
        labels=[str(i) for i in range(10)],
    ).save(ckpt / "model.json")
    out = tmp_path / "demo"
    tic = time.perf_counter()
    figures = decomposed_section(ckpt, out, log=lambda _m: None, limit=300)
    assert time.perf_counter() - tic < 60
    assert 0 <= figures["original_accuracy"] <= 1 and 0 <= figures["decomposed_accuracy"] <= 1
    assert figures["finite"] and len(figures["filters"]) == 5
    assert all(
        len(s) == 5 for s in load_indices(out / "decomposed_indices.json", num_classes=10, num_filters=64)
    )
    page = (out / PAGE).read_text()
    assert "decomposed_explanation.png" in page and (out / "decomposed_explanation.png").stat().st_size > 0
    assert json.loads((out / "decomposed.json").read_text())["k"] == 5
    report = out / "report.html"
    report.write_text("<html><body><h1>demo</h1></body></html>")
    link_from_report(report)
    link_from_report(report)
    assert report.read_text().count(f'href="{PAGE}"') == 1
