"""The demo's decomposed-layer page in headless Chromium: screenshot, every image loaded, no
console error."""

from __future__ import annotations

from pathlib import Path

import torch

from xai_serve.decomposition.demo import PAGE, decomposed_section
from xai_serve.models import ModelCard, create_model


def test_decomposed_page_in_chromium(tmp_path: Path, render_report) -> None:
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
    decomposed_section(ckpt, out, log=lambda _m: None)
    page = render_report(out / PAGE)
    assert page.screenshot.stat().st_size > 5_000
    assert page.images and all(i["naturalWidth"] > 0 for i in page.images), page.images
    assert page.console_errors == []
