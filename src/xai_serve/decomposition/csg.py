"""The CSG baseline's gate (Liang et al. 2020; docs/methods.md#decomp-csg) and the one-time conversion of the
Decomposing the Deep code's ``resnet20_csg.pth``.

The released file pickles non-tensor objects, so it cannot be read with ``weights_only=True``.
:func:`convert_csg_checkpoint` reads it ONCE with :func:`load_untrusted_pickle` (``weights_only=False``,
with a warning: only for a file you trust) and writes a checkpoint directory that loads safely::

    model.json   ModelCard of resnet20 on cifar10
    best.pt      the network's plain state_dict (no gate)
    gate.pt      the gate tensor (classes x filters), float32

Command: ``xai decompose convert-csg resnet20_csg.pth --out runs/resnet20_csg``.
``csg_indices(gate, k, order)`` gives the CSG filter sets for any ``k``: ``descending`` = the ``k``
largest gate values per class (the class-specific filters, correct), ``seed_ascending`` = the ``k``
smallest (the original code's ``csg.argsort(1)[:, :k]``, which equals ``resnet20_cifar-10_csg_indices.json``).
"""

from __future__ import annotations

import os
import warnings
from pathlib import Path
from typing import Any, Literal

import torch

from xai_serve.atomic import atomic_torch_save
from xai_serve.errors import CheckpointError, InvalidArgumentError

CsgOrder = Literal["seed_ascending", "descending"]
CSG_ORDERS: tuple[str, ...] = ("seed_ascending", "descending")
GATE_FILE = "gate.pt"
GATE_KEY = "csg"


def load_untrusted_pickle(path: str | os.PathLike[str]) -> Any:
    """``torch.load(path, weights_only=False)``: runs arbitrary pickled code. Use only on a file you trust,
    once, to convert it (see :func:`convert_csg_checkpoint`)."""
    warnings.warn(
        f"loading {path} with weights_only=False (arbitrary unpickling): only do this for a trusted file",
        UserWarning,
        stacklevel=2,
    )
    return torch.load(Path(path), map_location="cpu", weights_only=False)


def split_csg_state(state: dict[str, Any]) -> tuple[dict[str, torch.Tensor], torch.Tensor]:
    """``(network state_dict, gate)`` from a CSG model state (``module.`` prefixes stripped)."""
    clean = {(k[len("module.") :] if k.startswith("module.") else k): v for k, v in state.items()}
    if GATE_KEY not in clean or not isinstance(clean[GATE_KEY], torch.Tensor):
        raise CheckpointError(f"the CSG state has no gate tensor {GATE_KEY!r}")
    gate = clean.pop(GATE_KEY).detach().float().clone()
    if gate.ndim != 2:
        raise CheckpointError(f"the CSG gate must be 2-D (classes x filters), got {tuple(gate.shape)}")
    tensors = {k: v.detach().clone() for k, v in clean.items() if isinstance(v, torch.Tensor)}
    return tensors, gate


def convert_csg_checkpoint(src: str | os.PathLike[str], out_dir: str | os.PathLike[str]) -> Path:
    """Convert the original code's CSG ``.pth`` into a weights-only checkpoint directory (module doc)."""
    from xai_serve.data.cifar10 import LABELS, MEAN, STD
    from xai_serve.models import ModelCard, create_model

    obj = load_untrusted_pickle(src)
    state = obj.get("model_state_dict", obj) if isinstance(obj, dict) else None
    if not isinstance(state, dict):
        raise CheckpointError(f"{src}: expected a dict with 'model_state_dict'")
    weights, gate = split_csg_state(state)
    model = create_model("resnet20", num_classes=gate.shape[0])
    try:
        model.load_state_dict(weights)
    except RuntimeError as exc:
        raise CheckpointError(f"{src}: the network is not a resnet20: {exc}") from exc
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    atomic_torch_save(out / "best.pt", weights)
    atomic_torch_save(out / GATE_FILE, gate)
    ModelCard(
        model="resnet20",
        model_kwargs={"num_classes": int(gate.shape[0])},
        dataset="cifar10",
        input_shape=[3, 32, 32],
        mean=list(MEAN),
        std=list(STD),
        labels=list(LABELS),
    ).save(out / "model.json")
    return out


def load_gate(path: str | os.PathLike[str]) -> torch.Tensor:
    """The gate (classes x filters) from ``gate.pt`` or a converted checkpoint directory, weights-only."""
    p = Path(path)
    if p.is_dir():
        p = p / GATE_FILE
    if not p.is_file():
        raise CheckpointError(
            f"CSG gate not found: {p} (convert the CSG checkpoint with `xai decompose convert-csg`)"
        )
    try:
        obj = torch.load(p, map_location="cpu", weights_only=True)
    except Exception as exc:
        raise CheckpointError(f"cannot load {p} weights-only: {exc}") from exc
    if isinstance(obj, dict):
        obj = obj.get(GATE_KEY, obj.get("gate"))
    if not isinstance(obj, torch.Tensor) or obj.ndim != 2:
        raise CheckpointError(f"{p} does not hold a 2-D gate tensor")
    return obj.float()


def csg_indices(gate: torch.Tensor, k: int, order: str = "descending") -> list[list[int]]:
    """Per class, ``k`` filters by gate value: ``descending`` (largest) or ``seed_ascending`` (smallest)."""
    if order not in CSG_ORDERS:
        raise InvalidArgumentError(f"csg order must be one of {', '.join(CSG_ORDERS)}, got {order!r}")
    if not 1 <= k <= gate.shape[1]:
        raise InvalidArgumentError(f"k must be in 1..{gate.shape[1]}, got {k}")
    ranked = torch.sort(gate, dim=1, descending=order == "descending", stable=True).indices
    return [[int(f) for f in row[:k]] for row in ranked]
