"""The CSG checkpoint converts once into a weights-only checkpoint directory + gate
(docs/methods.md#decomp-csg)."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from xai_serve.decomposition.csg import convert_csg_checkpoint, csg_indices, load_gate
from xai_serve.decomposition.indices import load_indices
from xai_serve.errors import CheckpointError, InvalidArgumentError
from xai_serve.models import load_checkpoint


def test_convert_then_weights_only(tmp_path: Path, released) -> None:
    with pytest.raises(Exception, match=r"[Ww]eights only"):
        torch.load(released.csg_pth, map_location="cpu", weights_only=True)
    with pytest.warns(UserWarning, match="weights_only=False"):
        out = convert_csg_checkpoint(released.csg_pth, tmp_path / "csg")
    for name in ("best.pt", "gate.pt"):
        torch.load(out / name, map_location="cpu", weights_only=True)  # loads safely
    model, card = load_checkpoint(out)
    assert card.model == "resnet20" and card.num_classes == 10
    gate = load_gate(out)
    assert gate.shape == (10, 64) and float(gate.max()) == pytest.approx(0.8031, abs=1e-4)
    seed_sets = load_indices(released.csg_index_file, num_classes=10, num_filters=64)
    assert csg_indices(gate, 5, "seed_ascending") == seed_sets  # the original code's quirk, exactly
    top = csg_indices(gate, 5, "descending")
    assert all(
        float(gate[c, top[c]].min()) >= float(gate[c].sort(descending=True).values[4]) for c in range(10)
    )
    # the largest-gate filters have positive FC weights for their class, the original's ones negative
    w = model.linear.weight.detach()
    assert all(float(w[c, top[c]].mean()) > 0 > float(w[c, seed_sets[c]].mean()) for c in range(10))
    with pytest.raises(InvalidArgumentError, match="csg order"):
        csg_indices(gate, 5, "ascending")


def test_missing_gate(tmp_path: Path) -> None:
    with pytest.raises(CheckpointError, match="convert-csg"):
        load_gate(tmp_path)
