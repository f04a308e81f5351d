"""``xai evaluate randomisation --variant components``: the component-wise cascade of General Pattern
Theory (Tjoa & Guan, docs/methods.md#gpt-cascade) as a variant of the randomisation suite, computed by
:func:`xai_serve.evaluation.component_randomisation.component_cascade` (one copy) over the levels the
model declares."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pytest
import torch

from xai_serve.errors import InvalidParameterError
from xai_serve.evaluation.component_randomisation import component_cascade
from xai_serve.evaluation.context import EvalContext
from xai_serve.evaluation.randomisation import schedule
from xai_serve.evaluation.registry import get_suite
from xai_serve.evaluation.runner import run_suite
from xai_serve.models.randomisation_levels import component_levels
from xai_serve.testing import write_gpt_checkpoint

METHODS = ["gradient", "gradcam"]
# the General Pattern Theory Grad-CAM at the input adapter, named through the classifier view the
# suites see
PARAMS = {"gradcam": {"layer": "model.channel_adj", "relu": False}}
# the options class through the registry (discovery order), not by importing the spec module first
RandomisationOptions = get_suite("randomisation").options


@pytest.fixture(scope="module")
def ckpt(tmp_path_factory: pytest.TempPathFactory) -> Path:
    # generator_bias: some pixels predict a non-empty generator
    return write_gpt_checkpoint(tmp_path_factory.mktemp("gptrand"), width=4, seed=2, generator_bias=0.5)


def _csv(path: Path) -> list[dict[str, str]]:
    return list(csv.DictReader(path.read_text(encoding="utf-8").splitlines()))


def test_components_variant_runs_the_gpt_cascade(ckpt: Path, tmp_path: Path) -> None:
    ctx = EvalContext.from_checkpoint(
        str(ckpt), dataset="pattern_digits", split="test", samples=2, methods=METHODS, method_params=PARAMS
    )
    assert ctx.full_model is not None
    before = {k: v.clone() for k, v in ctx.full_model.state_dict().items()}
    opts = RandomisationOptions(variant="components", pixels=2, batch_size=1)  # two batches
    result = run_suite("randomisation", ctx, opts, tmp_path / "r", seed=5)
    levels = component_levels(ctx.full_model)
    assert (
        result["layers"]
        == [lv.name for lv in levels]
        == [lv.name for lv in schedule(ctx.full_model, "components")]
    )
    assert all(torch.equal(before[k], v) for k, v in ctx.full_model.state_dict().items())  # restored

    summary = _csv(tmp_path / "r" / "summary.csv")
    labels = {f"{m}[{o}]" for m in METHODS for o in ("yg", "ys")}
    assert {r["method"] for r in summary} == labels
    assert {int(r["level"]) for r in summary} == set(range(len(levels) + 1))
    for r in summary:
        assert r["variant"] == "components" and r["mode"] == "cascading"
        if r["level"] == "0":
            assert float(r["spearman_mean"]) == pytest.approx(1.0)
    assert len(_csv(tmp_path / "r" / "layers.csv")) == len(levels)
    assert (tmp_path / "r" / "randomisation.png").stat().st_size > 0

    # the rows of the first sample are exactly component_cascade on it (same seed, same pixels)
    rows = _csv(tmp_path / "r" / "similarity.csv")
    first = int(ctx.indices[0])
    direct = {"gradient": {}, "gradcam": {"layer": "channel_adj", "relu": False}}
    res = component_cascade(ctx.full_model, ctx.images[:1], direct, seed=5, pixels=2)
    assert res, "the fixture model predicts no non-empty generator"
    for o in ("yg", "ys"):
        for m in METHODS:
            for k in ("spearman", "spearman_abs"):
                got = np.array(
                    [
                        [
                            float(r[k])
                            for r in rows
                            if r["method"] == f"{m}[{o}]"
                            and int(r["index"]) == first
                            and int(r["level"]) == level
                        ]
                        for level in range(len(levels) + 1)
                    ]
                )
                np.testing.assert_allclose(got, res[o][m][k], rtol=0, atol=1e-12)
    top = [r for r in summary if int(r["level"]) == len(levels)]
    assert any(float(r["spearman_abs_mean"]) < 0.999 for r in top)  # randomising changes the maps
    assert "Parameter randomisation" in (tmp_path / "r" / "report.html").read_text(encoding="utf-8")


def test_components_variant_needs_several_outputs(tmp_path: Path) -> None:
    model = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(4, 2)).eval()
    ctx = EvalContext(
        model,
        torch.rand(2, 1, 2, 2),
        torch.tensor([0, 1]),
        torch.tensor([0, 1]),
        ["a", "b"],
        [0.0],
        [1.0],
        {"gradient": lambda x, t: x},
    )
    with pytest.raises(InvalidParameterError, match="component outputs"):
        run_suite("randomisation", ctx, RandomisationOptions(variant="components"), tmp_path / "r", seed=0)
