"""The recipe's ``[loss]`` section: the General Pattern Theory three-part loss, the loss monitor, a tiny GPT
run."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

from xai_serve.errors import RecipeError
from xai_serve.training import parse_recipe, train
from xai_serve.training.losses import GptCriterion, LossMonitor
from xai_serve.training.recipe import LossSection, load_recipe

ROOT = Path(__file__).resolve().parents[3]


def test_gpt_loss_is_ce_plus_background_weighted_pixel_ces() -> None:
    torch.manual_seed(0)
    y, yg, ys = torch.randn(2, 10), torch.rand(2, 4, 5, 5), torch.rand(2, 8, 5, 5)
    y0 = torch.tensor([3, 7])
    yg0 = torch.zeros(2, 5, 5, dtype=torch.long)
    ys0 = torch.zeros(2, 5, 5, dtype=torch.long)
    yg0[0, 1, 2], ys0[0, 1, 2], yg0[1, 4, 4], ys0[1, 4, 4] = 1, 6, 1, 2
    crit = GptCriterion(LossSection(name="gpt", weights=[1.0, 2.0, 3.0], background_weight=0.01))
    total, parts = crit((y, yg, ys), (y0, yg0, ys0))

    def weighted_ce(logits: torch.Tensor, target: torch.Tensor) -> float:
        # by hand: sum_p w[t_p] * -log softmax(logits_p)[t_p] / sum_p w[t_p]
        logp = logits.log_softmax(1).permute(0, 2, 3, 1).reshape(-1, logits.shape[1])
        t = target.reshape(-1)
        w = torch.where(t == 0, 0.01, 1.0)
        return float((w * -logp[torch.arange(len(t)), t]).sum() / w.sum())

    expected = [float(F.cross_entropy(y, y0)), weighted_ce(yg, yg0), weighted_ce(ys, ys0)]
    assert parts == pytest.approx(expected, rel=1e-6)
    assert float(total) == pytest.approx(expected[0] + 2 * expected[1] + 3 * expected[2], rel=1e-6)


def test_monitor_stops_on_running_mean_and_keeps_the_best_as_the_seed_does() -> None:
    section = LossSection(
        name="gpt", stop_below=[1.0, 1.0, 1.0], stop_window=2, keep_best="running_loss", best_discount=0.5
    )
    mon = LossMonitor(section)
    mon.update([0.5, 0.5, 0.5])
    assert not mon.stopped  # the window is not full yet
    assert mon.improved and mon.best == [float("inf")] * 2  # the original's max(current, 0.5 * inf) = inf
    mon.improved = False
    mon.update([2.0, 5.0, 0.5])  # running mean (1.25, 2.75, 0.5): y above its threshold -> not best
    assert not mon.stopped and not mon.improved
    mon.update([0.1, 0.1, 3.0])  # running (1.05, 2.55, 1.75)
    assert not mon.stopped and not mon.improved
    mon.update([0.1, 0.1, 0.1])  # running (0.1, 0.1, 1.55): ys not below 1 yet, y below -> best
    assert not mon.stopped and mon.improved
    mon.update([0.1, 0.1, 0.1])  # running (0.1, 0.1, 0.1): all below 1
    assert mon.stopped
    assert len(mon.parts) == 5


def test_loss_section_validation_and_shipped_recipes() -> None:
    base = {
        "name": "r",
        "epochs": 1,
        "model": {"name": "resgptnet_small"},
        "data": {"name": "pattern_digits"},
    }
    with pytest.raises(RecipeError, match=r"loss\.name"):
        parse_recipe({**base, "loss": {"name": "mse"}})
    with pytest.raises(RecipeError, match=r"loss\.weights"):
        parse_recipe({**base, "loss": {"name": "gpt", "weights": [1, 1]}})
    with pytest.raises(RecipeError, match=r"loss\.keep_best"):
        parse_recipe({**base, "loss": {"name": "gpt", "keep_best": "latest"}})
    for name in ("gpt_small", "gpt_resgptnet34", "gpt_finetune_nice1", "gpt_finetune_nice2"):
        recipe = load_recipe(ROOT / "training" / f"{name}.toml")
        assert recipe.loss.name == "gpt"
    nice2 = load_recipe(ROOT / "training" / "gpt_finetune_nice2.toml")
    assert nice2.loss.weights == [1.0, 1.0, 100.0] and nice2.loss.keep_best == "running_loss"
    assert nice2.optimizer.betas == [0.9, 0.9] and nice2.data.options["class_probs"][-2:] == [6, 6]
    seed = load_recipe(ROOT / "training" / "gpt_resgptnet34.toml")
    assert (seed.batch_size, seed.optimizer.lr, seed.optimizer.betas) == (16, 1e-3, [0.5, 0.999])
    assert seed.loss.background_weight == 0.01 and seed.loss.stop_below == [1e-5, 2e-4, 2e-4]


def test_a_tiny_gpt_run_lowers_all_three_losses(tmp_path: Path) -> None:
    torch.set_num_threads(1)
    recipe = parse_recipe(
        {
            "name": "tiny_gpt",
            "seed": 0,
            "device": "cpu",
            "epochs": 3,
            "batch_size": 16,
            "model": {"name": "resgptnet_small", "kwargs": {"width": 8}},
            "data": {"name": "pattern_digits", "options": {"size": {"train": 192, "val": 32, "test": 32}}},
            "optimizer": {"name": "adam", "lr": 3e-3, "betas": [0.5, 0.999], "weight_decay": 1e-5},
            "loss": {"name": "gpt", "background_weight": 0.01},
        }
    )
    result = train(recipe, tmp_path / "run", progress=False)
    with open(tmp_path / "run" / "history.csv", encoding="utf-8") as fh:
        rows = list(csv.DictReader(fh))
    for part in ("y", "yg", "ys"):
        first, last = float(rows[0][f"train_loss_{part}"]), float(rows[-1][f"train_loss_{part}"])
        assert last < first, (part, first, last)
    card = json.loads((tmp_path / "run" / "model.json").read_text())
    assert card["outputs"] == ["y", "yg", "ys"] and card["dataset"] == "pattern_digits"
    assert result.completed
    # the reported test accuracy is best.pt's argmax of y on the test split, counted here directly
    from xai_serve.models import load_checkpoint
    from xai_serve.training.runner import load_splits

    model, _ = load_checkpoint(tmp_path / "run", "best")
    test = load_splits(recipe)["test"].dataset
    correct = 0
    with torch.no_grad():
        for i in range(len(test)):
            x, target = test[i]
            label = int(target[0] if isinstance(target, (tuple, list)) else target)
            correct += int(model(x[None])[0].argmax(1).item() == label)
    assert result.metrics["accuracy"] == pytest.approx(correct / len(test), abs=1e-12)
    assert result.metrics["misclassified"] == len(test) - correct
