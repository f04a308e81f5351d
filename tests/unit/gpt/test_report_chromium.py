"""The GPT figures page (``xai gpt``, seed A) in headless Chromium: screenshot, every image loaded,
no console error."""

from __future__ import annotations

from pathlib import Path

import torch

from xai_serve.gpt.commands import gpt_figures
from xai_serve.models import ModelCard, create_model


def test_gpt_page_in_chromium(tmp_path: Path, render_report) -> None:
    torch.manual_seed(0)
    torch.save(create_model("resgptnet_small", width=4).state_dict(), tmp_path / "best.pt")
    ModelCard(
        model="resgptnet_small",
        model_kwargs={"width": 4},
        dataset="pattern_digits",
        input_shape=[1, 28, 28],
        mean=[0.0],
        std=[1.0],
        labels=[str(i) for i in range(10)],
        outputs=["y", "yg", "ys"],
    ).save(tmp_path / "model.json")
    index = gpt_figures(tmp_path, tmp_path / "fig", classes=(0, 9), pixels=2)
    page = render_report(index)
    assert page.screenshot.stat().st_size > 5_000
    assert len(page.images) >= 5 and all(i["naturalWidth"] > 0 for i in page.images), page.images
    assert page.console_errors == []
