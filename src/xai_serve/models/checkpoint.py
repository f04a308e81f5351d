"""Loading a checkpoint directory written by ``xai train`` (see README / TEAM contract for its layout)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Literal

import torch
from torch import nn

from xai_serve.errors import CheckpointError
from xai_serve.models.canonicalise import canonicalise
from xai_serve.models.card import ModelCard
from xai_serve.models.user_model import build_from_card
from xai_serve.models.weights import load_state_dict_file

CARD_FILE = "model.json"
WEIGHT_FILES = {"best": "best.pt", "last": "weights.pt"}


def load_checkpoint(
    ckpt_dir: str | os.PathLike[str],
    which: Literal["best", "last"] = "best",
    *,
    device: str | torch.device = "cpu",
) -> tuple[nn.Module, ModelCard]:
    """Rebuild the model of ``ckpt_dir`` from ``model.json`` (a registry model or the card's model file)
    and load ``best.pt`` (``which="best"``) or ``weights.pt`` (``"last"``) with ``weights_only=True``.
    Returns the model, canonicalised, in eval mode on ``device``, and its :class:`ModelCard`."""
    ckpt = Path(ckpt_dir)
    if not ckpt.is_dir():
        raise CheckpointError(f"checkpoint directory not found: {ckpt}")
    if which not in WEIGHT_FILES:
        raise CheckpointError(f"which must be 'best' or 'last', got {which!r}")
    card = ModelCard.load(ckpt / CARD_FILE)
    weights = ckpt / WEIGHT_FILES[which]
    if not weights.is_file():
        raise CheckpointError(f"{ckpt} has no {WEIGHT_FILES[which]} (which={which!r})")
    model = build_from_card(card, ckpt)
    try:
        model.load_state_dict(load_state_dict_file(weights))
    except RuntimeError as exc:
        raise CheckpointError(f"{weights} does not match model {card.model!r}: {exc}") from exc
    canonicalise(model)
    return model.to(device).eval(), card
