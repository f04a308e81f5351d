"""`xai evaluate saliency-images` (docs/methods.md#saliency-post-processing): the SimpleNet
study's four images per sample and method,
named as the study names them, equal to the study's post-processing of the engine's map."""

from __future__ import annotations

import json

import numpy as np
import torch
from PIL import Image
from typer.testing import CliRunner
from xai_client.saliency import seed_images

from xai_serve.cli import app
from xai_serve.evaluation.context import EvalContext


def test_exports_with_seed_names(digits_checkpoint, tmp_path) -> None:
    out = tmp_path / "sal"
    res = CliRunner().invoke(
        app,
        ["evaluate", "saliency-images", "--checkpoint", str(digits_checkpoint), "--out", str(out),
         "--samples", "3", "--methods", "guided_backprop,gradient"],
    )  # fmt: skip
    assert res.exit_code == 0, res.output
    listing = json.loads((out / "images.json").read_text())
    assert listing["seed_names"] and len(listing["images"]) == 2 * 3
    first = next(e for e in listing["images"] if e["method"] == "guided_backprop")
    suffixes = [f.rsplit("guided_backprop", 1)[1] for f in first["files"]]
    assert suffixes == ["_Guided_BP_color.png", "_Guided_BP_gray.png", "_pos_sal.png", "_neg_sal.png"]
    for entry in listing["images"]:
        assert all((out / f).stat().st_size > 0 for f in entry["files"])
    # the exported gray image is the study's post-processing of the engine's map for that sample
    ctx = EvalContext.from_checkpoint(str(digits_checkpoint), samples=3, seed=0, methods=["guided_backprop"])
    j = list(ctx.indices.tolist()).index(first["index"])
    x, _ = ctx.batch(slice(j, j + 1))
    g = ctx.attributions["guided_backprop"](x, torch.tensor([first["target"]]))[0].detach().numpy()
    got = np.asarray(Image.open(out / first["files"][1]))
    np.testing.assert_array_equal(got, seed_images(g)["_Guided_BP_gray"][..., 0])
