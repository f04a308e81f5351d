"""The decomposed-layer model form (Decomposing the Deep, docs/methods.md#decomp-layer): a classifier whose
final linear layer is masked per class, so class ``c``'s logit uses only its influential filters ``S_c``::

    logit_c(x) = b_c + sum_{f in S_c} W[c, f] * h_f(x)        (h = the globally pooled last conv stage)

This is ``Linear`` with weight ``W * Mask`` (``Mask[c, f] = 1[f in S_c]``), the Decomposing the Deep code's
intended semantics (not the indexing bug of its ``modified_resnet.py``). :func:`decompose` swaps the head's
``nn.Linear`` for a :class:`MaskedLinear` in place; parameter names stay those of the base model, so
the base checkpoint loads with ``strict=True`` and ``xai train`` / ``finetune`` checkpoints of the
decomposed model load back into it. The masked weight entries are kept at exactly zero (after
construction and after every ``load_state_dict``), so methods that read ``module.weight`` directly
(LRP) see the decomposed layer; the forward multiplies by the mask as well, so a gradient step never
revives a masked entry. Registered as the model ``decomposed`` (kwargs: ``base``, ``base_kwargs``,
``indices``), so every explanation method and the serving stack work on it.

:func:`find_head` locates "global pooling + one linear layer" heads (ResNet-20, torchvision ResNets,
SimpleNet) and names the layers involved.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from xai_serve.errors import InvalidArgumentError, UnsupportedLayerError
from xai_serve.models.layers import MaskedLinear
from xai_serve.models.registry import create_model, register_model
from xai_serve.models.weights import load_state_dict_file

_POOLS = (nn.AdaptiveAvgPool2d, nn.AdaptiveMaxPool2d)


@dataclass(frozen=True)
class Head:
    """The classifier head: ``pool`` (global pooling of the last conv stage ``feature``) then ``linear``."""

    linear_name: str
    linear: nn.Linear
    pool_name: str
    pool: nn.Module
    feature_name: str  # the module whose output is pooled (e.g. ``layer3``), for reports

    @property
    def num_filters(self) -> int:
        return int(self.linear.in_features)

    @property
    def num_classes(self) -> int:
        return int(self.linear.out_features)

    def describe(self) -> str:
        kind = "average" if isinstance(self.pool, nn.AdaptiveAvgPool2d) else "max"
        return (
            f"{self.feature_name} ({self.num_filters} filters) -> global {kind} pool "
            f"{self.pool_name} -> {self.linear_name} ({self.num_classes} classes)"
        )


def _is_global(pool: nn.Module) -> bool:
    size = getattr(pool, "output_size", None)
    return size in (1, (1, 1), [1, 1])


def find_head(model: nn.Module) -> Head:
    """The model's global-pooling + single-linear head, or UnsupportedLayerError naming what is missing."""
    name = type(model).__name__
    linears = [(n, m) for n, m in model.named_modules() if isinstance(m, nn.Linear)]
    if len(linears) != 1:
        raise UnsupportedLayerError(
            f"decomposition needs a head of global pooling + one linear layer; {name} has "
            f"{len(linears)} nn.Linear layers ({', '.join(n for n, _ in linears) or 'none'})"
        )
    pools = [(n, m) for n, m in model.named_modules() if isinstance(m, _POOLS) and _is_global(m)]
    if not pools:
        raise UnsupportedLayerError(
            f"decomposition needs a head of global pooling + one linear layer; {name} has no global "
            "AdaptiveAvgPool2d/AdaptiveMaxPool2d(1)"
        )
    pool_name, pool = pools[-1]
    parent_name, _, leaf = pool_name.rpartition(".")
    parent = model.get_submodule(parent_name) if parent_name else model
    siblings = [n for n, _ in parent.named_children()]
    pos = siblings.index(leaf)
    if pos > 0:
        feature_name = f"{parent_name}.{siblings[pos - 1]}" if parent_name else siblings[pos - 1]
    else:
        feature_name = f"input of {pool_name}"
    linear_name, linear = linears[0]
    return Head(linear_name, linear, pool_name, pool, feature_name)


def mask_from_indices(indices: Sequence[Sequence[int]], num_classes: int, num_filters: int) -> torch.Tensor:
    """The (classes, filters) 0/1 float mask of per-class filter lists (validated)."""
    if len(indices) != num_classes:
        raise InvalidArgumentError(
            f"the filter sets name {len(indices)} classes but the model has {num_classes}"
        )
    mask = torch.zeros(num_classes, num_filters)
    for c, filters in enumerate(indices):
        for f in filters:
            if isinstance(f, bool) or not isinstance(f, int) or not 0 <= f < num_filters:
                raise InvalidArgumentError(f"class {c}: filter {f!r} is out of range 0..{num_filters - 1}")
            mask[c, f] = 1.0
    return mask


def decompose(model: nn.Module, indices: Sequence[Sequence[int]]) -> nn.Module:
    """Replace ``model``'s head linear layer by a :class:`MaskedLinear` for ``indices`` (class -> filters),
    in place; returns ``model``. Decomposing an already decomposed model keeps only filters in both
    sets (its masked weights are already zero)."""
    head = find_head(model)
    mask = mask_from_indices(indices, head.num_classes, head.num_filters)
    parent_name, _, leaf = head.linear_name.rpartition(".")
    parent = model.get_submodule(parent_name) if parent_name else model
    setattr(parent, leaf, MaskedLinear(head.linear, mask))
    return model


def is_decomposed(model: nn.Module) -> bool:
    return isinstance(find_head(model).linear, MaskedLinear)


@register_model("decomposed")
def decomposed(
    base: str,
    indices: list[list[int]],
    base_kwargs: dict[str, Any] | None = None,
    weights: str | None = None,
) -> nn.Module:
    """The registered model ``base`` (built with ``base_kwargs``) with its final linear layer masked per
    class by ``indices`` (class -> influential filters); ``weights`` = a local state_dict of the base
    (or of a decomposed checkpoint: the keys are the same)."""
    if base == "decomposed":
        raise InvalidArgumentError("the base of a decomposed model cannot itself be 'decomposed'")
    model = decompose(create_model(base, **dict(base_kwargs or {})), indices)
    if weights is not None:
        model.load_state_dict(load_state_dict_file(weights))
    return model
