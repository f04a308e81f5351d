"""The component-wise cascading randomisation of General Pattern Theory
(Tjoa & Guan, docs/methods.md#gpt-component-cascade) on ResGPTNet: the levels the model declares, level 0 = 1,
randomising changes the maps, ``xai gpt sanity``."""

from __future__ import annotations

import numpy as np
import torch

from xai_serve.evaluation.component_randomisation import component_cascade
from xai_serve.evaluation.randomisation import randomise
from xai_serve.models import create_model


def test_levels_and_max_uniform_noise() -> None:
    torch.manual_seed(0)
    model = create_model("resgptnet_small", width=4).eval()
    levels = model.component_levels()
    assert [lv.name for lv in levels] == ["heads", "eb2", "eb1", "eb0", "backbone.layer2", "backbone.layer1"]
    assert levels[0].params == ("cyg.c1.weight", "cyg.c2.weight", "cys.c1.weight", "cys.c2.weight")
    assert "eb2.bn1.weight" in levels[1].params and not any("downsample" in p for p in levels[4].params)
    w = model.cyg.c1.weight.detach().clone()
    randomise(model, levels[0], seed=3)
    new = model.cyg.c1.weight.detach()
    assert not torch.equal(w, new) and float(new.abs().max()) <= 0.5 * abs(float(w.max())) + 1e-7


def test_cascade_level_zero_is_one_and_heads_change_the_maps() -> None:
    torch.manual_seed(1)
    model = create_model("resgptnet_small", width=4).double().eval()
    with torch.no_grad():  # make some pixels predict a non-empty generator
        model.cyg.c2.weight[:, 1].add_(0.5)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    x = torch.rand(1, 1, 28, 28, dtype=torch.float64, generator=torch.Generator().manual_seed(2))
    res = component_cascade(model, x, {"gradient": {}}, seed=0, pixels=2)
    assert set(res) == {"yg", "ys"}
    rho = res["yg"]["gradient"]["spearman"]
    assert rho.shape == (7, 2)
    np.testing.assert_allclose(rho[0], 1.0)
    assert (rho[1:] < 0.999).any()
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())  # restored


def test_sanity_command_writes_the_seed_csvs(tmp_path) -> None:  # type: ignore[no-untyped-def]
    import csv

    from xai_serve.pattern_theory.commands import gpt_sanity
    from xai_serve.testing import write_gpt_checkpoint

    write_gpt_checkpoint(tmp_path, seed=2, generator_bias=0.5)  # some pixels predict a non-empty generator
    files = gpt_sanity(tmp_path, tmp_path / "out", samples=1, pixels=1)
    names = {f.name for f in files}
    assert {"yg.cascade_rand.0.csv", "abs.ys.cascade_rand.6.csv"} <= names
    rows = list(csv.DictReader((tmp_path / "out" / "yg.cascade_rand.0.csv").read_text().splitlines()))
    assert set(rows[0]) == {"gradCAM", "deconv", "GuidedBP"} and float(rows[0]["deconv"]) == 1.0
