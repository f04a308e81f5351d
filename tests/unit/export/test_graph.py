"""`xai graph`: the layer graph as SVG + PNG with the module names `layer=` takes (Graphviz `dot`,
installed by the Makefile; a missing one FAILS)."""

from __future__ import annotations

import json

import torch
from PIL import Image
from torch import nn
from typer.testing import CliRunner

from xai_serve.cli import app
from xai_serve.export.graph import render, to_dot
from xai_serve.models import create_model


def test_graph_command_writes_svg_and_png_with_module_names(digits_ckpt, tmp_path):
    res = CliRunner().invoke(app, ["graph", str(digits_ckpt), "--out", str(tmp_path / "g")])
    assert res.exit_code == 0, res.output
    out = json.loads(res.output.strip().splitlines()[-1])
    svg = (tmp_path / "g.svg").read_text()
    model = create_model("mlp", input_shape=[1, 28, 28], hidden=[32, 16])
    names = [n for n, m in model.named_modules() if n and not list(m.children())]
    assert names and all(f">{n}<" in svg for n in names), names
    with Image.open(out["png"]) as im:
        assert im.width > 100 and im.height > 100


def test_resnet_graph_traces_the_residual_data_flow(tmp_path):
    dot = to_dot(create_model("resnet20"), "resnet20")
    assert "layer1.0.conv1" in dot and "add" in dot  # the shortcut sum is an fx call_function node
    svg, png = render(dot, tmp_path / "r")
    assert svg.stat().st_size > 0 and png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


class _Branchy(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.a, self.b = nn.Linear(4, 4), nn.Linear(4, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.sum() > 0:  # data-dependent: fx cannot trace it
            x = -x
        return self.b(self.a(x))


def test_untraceable_model_is_drawn_in_module_order_and_says_so():
    dot = to_dot(_Branchy(), "branchy")
    assert "module order; data flow not traced" in dot and '"a" -> "b"' in dot
