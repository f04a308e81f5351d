"""Canonisers: reversible rewrites that make a model's graph visible to per-module rules.

They act through a :class:`~xai_serve.explain.patching.ModelPatch`, so leaving the patch undoes them.

* :func:`disable_inplace`: every module with an ``inplace`` flag (ReLU, Dropout...) computes out of place
  for the duration (activations captured by hooks are then never overwritten).
* :func:`explicit_residuals`: torchvision's ``BasicBlock`` / ``Bottleneck`` (exactly those classes, not
  the already canonical subclasses of :mod:`xai_serve.models.canonicalise`) compute ``out += identity``
  with a tensor operator no hook can see, and call one ReLU module two or three times. Their
  ``forward`` is replaced by one that routes the addition through a :class:`Sum` module (a hidden
  module, not registered on the model) so LRP can give it its ``Norm`` rule. Reusing the ReLU module is
  harmless for every method here: ReLU rules act per call.

BatchNorm merging is not a model rewrite here: the LRP engine computes with merged parameters in its
replaced forwards (see :mod:`xai_serve.explain.lrp`), the model's own tensors are never touched.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from xai_serve.explain.patching import ModelPatch
from xai_serve.models.layers import Sum


def disable_inplace(patch: ModelPatch, model: nn.Module) -> None:
    """Turn off ``inplace`` on every module that has it set, until the patch is restored."""
    for module in model.modules():
        if isinstance(getattr(module, "inplace", None), bool) and module.inplace:
            patch.set_module_flag(module, "inplace", False)


def _basic_forward(block: Any, add: Sum, x: torch.Tensor) -> torch.Tensor:
    identity = x
    out = block.relu(block.bn1(block.conv1(x)))
    out = block.bn2(block.conv2(out))
    if block.downsample is not None:
        identity = block.downsample(x)
    return block.relu(add(out, identity))


def _bottleneck_forward(block: Any, add: Sum, x: torch.Tensor) -> torch.Tensor:
    identity = x
    out = block.relu(block.bn1(block.conv1(x)))
    out = block.relu(block.bn2(block.conv2(out)))
    out = block.bn3(block.conv3(out))
    if block.downsample is not None:
        identity = block.downsample(x)
    return block.relu(add(out, identity))


def explicit_residuals(patch: ModelPatch, model: nn.Module) -> dict[str, Sum]:
    """Route torchvision residual additions through hidden :class:`Sum` modules; returns them by name.

    The names are ``"<block name>.add"`` (the same names :func:`xai_serve.models.canonicalise` uses).
    """
    try:
        from torchvision.models.resnet import BasicBlock, Bottleneck
    except ImportError:  # pragma: no cover - torchvision is a runtime dependency
        return {}
    sums: dict[str, Sum] = {}
    for name, module in model.named_modules():
        kind = type(module)
        if kind is BasicBlock or kind is Bottleneck:
            add = Sum()
            impl = _basic_forward if kind is BasicBlock else _bottleneck_forward

            def forward(x: torch.Tensor, _block: Any = module, _add: Sum = add, _impl: Any = impl) -> Any:
                return _impl(_block, _add, x)

            patch.replace_forward(module, forward)
            sums[f"{name}.add" if name else "add"] = add
    return sums
