"""Reading state_dicts from disk safely (``torch.load(..., weights_only=True)``, never arbitrary pickles)."""

from __future__ import annotations

import os
from pathlib import Path

import torch

from xai_serve.errors import CheckpointError

#: the keys a training checkpoint nests its state_dict under (also xai import: models/import_weights.py)
WRAPPER_KEYS = ("state_dict", "model_state_dict", "model")


def strip_prefix(state_dict: dict[str, torch.Tensor], prefix: str = "module.") -> dict[str, torch.Tensor]:
    """Remove ``prefix`` (DataParallel's ``module.``) from every key that has it."""
    return {(k[len(prefix) :] if k.startswith(prefix) else k): v for k, v in state_dict.items()}


def load_state_dict_file(path: str | os.PathLike[str]) -> dict[str, torch.Tensor]:
    """Load a state_dict saved by ``torch.save``: a plain ``{name: tensor}`` or a checkpoint dict wrapping
    one under ``state_dict`` / ``model_state_dict`` / ``model``; the ``module.`` prefix is stripped.

    Uses ``weights_only=True``; a file that needs arbitrary unpickling raises :class:`CheckpointError`.
    """
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"weights file not found: {path}")
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # pickle errors of many kinds
        raise CheckpointError(f"cannot load {path} as a weights-only state_dict: {exc}") from exc
    if isinstance(obj, dict):
        for key in WRAPPER_KEYS:
            if key in obj and isinstance(obj[key], dict):
                obj = obj[key]
                break
    if not isinstance(obj, dict) or not all(isinstance(v, torch.Tensor) for v in obj.values()):
        raise CheckpointError(f"{path} does not hold a state_dict of tensors")
    return strip_prefix(dict(obj))
