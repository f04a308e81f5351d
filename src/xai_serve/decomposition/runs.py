"""The ``xai decompose`` jobs as functions (the commands only parse options and print):
``find_report``, ``validate``, ``essential``, ``mutual_info_inputs``, ``finetune_decomposed``."""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch
from torch import nn

from xai_serve.data import DatasetBundle
from xai_serve.decomposition.csg import csg_indices, load_gate
from xai_serve.decomposition.essential import essential_counts
from xai_serve.decomposition.features import capture, pooled_features
from xai_serve.decomposition.filters import check_k, find_class_filters, selectivity
from xai_serve.decomposition.indices import ClassFilters, IndexFileError, load_indices
from xai_serve.decomposition.mutual_info import MutualInfo, mean_mutual_info, set_size
from xai_serve.decomposition.source import batches
from xai_serve.errors import CheckpointError, InvalidArgumentError
from xai_serve.models.decomposed import find_head, mask_from_indices
from xai_serve.models.layers import MaskedLinear


def find_report(
    model: nn.Module,
    bundle: DatasetBundle,
    ks: Sequence[float],
    *,
    mass: float = 0.9,
    batch_size: int = 256,
    device: str | torch.device = "cpu",
) -> dict[str, Any]:
    """Influential filters per class for every ``k`` and selectivity per class, from ``bundle``'s images.

    Returns ``{"layer", "dataset", "split", "images", "k": {"<k>": indices}, "selectivity": {"<mass>":
    {"<class>": {...}}}}``; selectivity is reported at each fractional ``k`` and at ``mass``."""
    head = find_head(model)
    ks = [check_k(k, head.num_filters) for k in ks]
    feats, labels, _ = pooled_features(model.to(device), batches(bundle, batch_size), device=device)
    out: dict[str, Any] = {
        "layer": head.describe(),
        "dataset": bundle.name,
        "split": bundle.split,
        "images": int(labels.numel()),
        "k": {str(k): find_class_filters(feats, labels, k, head.num_classes) for k in ks},
        "selectivity": {},
    }
    masses = sorted({float(k) for k in ks if isinstance(k, float)} | {float(mass)})
    for m in masses:
        out["selectivity"][str(m)] = {
            str(c): dataclasses.asdict(selectivity(feats[labels == c], m))
            for c in range(head.num_classes)
            if bool((labels == c).any())
        }
    return out


def validate(
    model: nn.Module,
    indices: ClassFilters,
    bundle: DatasetBundle,
    batch_size: int = 256,
    device: str | torch.device = "cpu",
) -> dict[str, Any]:
    """Accuracy of ``model`` and of its decomposed form on ``bundle`` from one forward pass per batch: the
    decomposed logits are the masked layer applied to the same pooled features (the model is unchanged)."""
    head = find_head(model)
    if isinstance(head.linear, MaskedLinear):
        raise InvalidArgumentError(
            "validate compares the original with the decomposed layer: pass the original"
        )
    mask = mask_from_indices(indices, head.num_classes, head.num_filters)
    model.to(device)
    masked = MaskedLinear(head.linear, mask.to(device)).eval()
    correct_full = correct_dec = n = 0
    with torch.no_grad():
        for x, y in batches(bundle, batch_size):
            c = capture(model, x.to(device), head)
            y = torch.as_tensor(y).to(device)
            correct_full += int((c.logits.argmax(dim=1) == y).sum())
            correct_dec += int((masked(c.pooled).argmax(dim=1) == y).sum())
            n += int(y.numel())
    return {
        "dataset": bundle.name,
        "split": bundle.split,
        "images": n,
        "original_accuracy": correct_full / n if n else float("nan"),
        "decomposed_accuracy": correct_dec / n if n else float("nan"),
        "filters_per_class": [len(s) for s in indices],
        "layer": head.describe(),
    }


def essential(
    runs: dict[str, tuple[nn.Module, ClassFilters]],
    bundle: DatasetBundle,
    *,
    seed: int = 0,
    batch_size: int = 8,
    device: str | torch.device = "cpu",
) -> dict[str, Any]:
    """The noise test per named run (``ours``, ``csg``), in the Decomposing the Deep code's layout
    ``{"<run>": {"<class>": ...}}``; each run draws its noise from ``seed``."""
    return {
        name: essential_counts(
            model.to(device), batches(bundle, batch_size), indices, seed=seed, device=device
        )
        for name, (model, indices) in runs.items()
    }


def _is_gate(path: Path) -> bool:
    return path.is_dir() or path.suffix in (".pt", ".pth", ".th")


def mutual_info_inputs(
    paths: Sequence[str | os.PathLike[str]], *, csg_order: str = "descending", num_filters: int | None = None
) -> dict[str, dict[str, MutualInfo]]:
    """MI means for every input: index files (``.json``: their own k) and CSG gates (``gate.pt`` or a
    converted checkpoint directory: the sets for every k found among the index files, in ``csg_order``).
    Keys: the input's stem, then k."""
    files = [Path(p) for p in paths]
    index_sets: dict[str, ClassFilters] = {}
    gates: dict[str, torch.Tensor] = {}
    for p in files:
        name = p.name if p.is_dir() else p.stem
        if name in index_sets or name in gates:
            raise InvalidArgumentError(f"two inputs are named {name!r}")
        if _is_gate(p):
            try:
                gates[name] = load_gate(p)
            except CheckpointError as exc:
                raise IndexFileError(str(exc)) from exc
        else:
            index_sets[name] = load_indices(p, num_filters=num_filters)
    dims = {g.shape[1] for g in gates.values()}
    if num_filters is None:
        if len(dims) > 1:
            raise InvalidArgumentError(f"the CSG gates disagree on the filter count: {sorted(dims)}")
        guess = max((f for s in index_sets.values() for c in s for f in c), default=-1) + 1
        num_filters = dims.pop() if dims else 64 if guess <= 64 else guess
    results: dict[str, dict[str, MutualInfo]] = {}
    for name, sets in index_sets.items():
        results[name] = {set_size(sets): mean_mutual_info(sets, num_filters)}
    ks = sorted({int(k) for per in results.values() for k in per if k.isdigit()})
    if gates and not ks:
        raise InvalidArgumentError("a CSG gate needs at least one index file to take its k values from")
    for name, gate in gates.items():
        results[name] = {str(k): mean_mutual_info(csg_indices(gate, k, csg_order), num_filters) for k in ks}
    return results


def finetune_decomposed(
    src: str | os.PathLike[str],
    index_file: str | os.PathLike[str],
    recipe_path: str | os.PathLike[str],
    out: str | os.PathLike[str],
    *,
    resume: bool = False,
    force: bool = False,
    which: str = "best",
    progress: bool = True,
) -> Any:
    """Fine-tune the decomposed form of checkpoint ``src`` (docs/methods.md#decomp-layer) with the training
    runner into ``out``.

    The recipe's ``model`` section is replaced by the decomposed model (base = ``src``'s card); ``src``
    is only read; ``resume`` continues an interrupted run in ``out``."""
    from xai_serve.decomposition.cards import decomposed_kwargs
    from xai_serve.models import load_checkpoint
    from xai_serve.training import load_recipe
    from xai_serve.training.recipe import ModelSection
    from xai_serve.training.runner import train

    source, target = Path(src).resolve(), Path(out).resolve()
    if target == source or source in target.parents or target in source.parents:
        raise CheckpointError(
            f"fine-tuning output {target} must not be, contain or lie inside the source {source}"
        )
    model, card = load_checkpoint(source, "best" if which == "best" else "last")
    head = find_head(model)
    indices = load_indices(index_file, num_classes=head.num_classes, num_filters=head.num_filters)
    recipe = load_recipe(recipe_path)
    recipe = dataclasses.replace(recipe, model=ModelSection("decomposed", decomposed_kwargs(card, indices)))
    state = None if resume else {k: v.detach().clone() for k, v in model.state_dict().items()}
    return train(
        recipe,
        target,
        resume=resume,
        force=force,
        init_state=state,
        progress=progress,
        extra_metrics={"finetuned_from": str(source), "decomposed_by": str(Path(index_file).resolve())},
    )
