"""Canonisers: reversible rewrites that make a model's graph visible to per-module rules.

They act through a :class:`~xai_serve.explain.patching.ModelPatch`, so leaving the patch undoes them.

* :func:`disable_inplace`: every module with an ``inplace`` flag (ReLU, Dropout...) computes out of place
  for the duration (activations captured by hooks are then never overwritten).
* :func:`explicit_residuals`: torchvision's ``BasicBlock`` / ``Bottleneck`` (exactly those classes, not
  the already canonical subclasses of :mod:`xai_serve.models.canonicalise`) compute ``out += identity``
  with a tensor operator no hook can see, and call one ReLU module two or three times. The model is
  canonicalised with the load-time mechanism (:func:`xai_serve.models.canonicalise`, recorded and
  removed with the patch): distinct ReLUs and the addition as a :class:`Sum` module ``add``, so LRP
  can give it its ``Norm`` rule.

BatchNorm merging is not a model rewrite here: the LRP engine computes with merged parameters in its
replaced forwards (see :mod:`xai_serve.explain.lrp_engine`), the model's own tensors are never touched.
"""

from __future__ import annotations

from torch import nn

from xai_serve.explain.patching import ModelPatch
from xai_serve.models.canonicalise import Changes, canonicalise, torchvision_blocks
from xai_serve.models.layers import Sum


def disable_inplace(patch: ModelPatch, model: nn.Module) -> None:
    """Turn off ``inplace`` on every module that has it set, until the patch is restored."""
    for module in model.modules():
        if isinstance(getattr(module, "inplace", None), bool) and module.inplace:
            patch.set_module_flag(module, "inplace", False)


def explicit_residuals(patch: ModelPatch, model: nn.Module) -> dict[str, Sum]:
    """Canonicalise ``model`` (:func:`xai_serve.models.canonicalise`, the one mechanism) until the patch
    is restored; returns the residual :class:`Sum` modules this added, by name (``"<block>.add"``)."""
    kinds = torchvision_blocks()  # None: torchvision not imported, so the model holds no such block
    blocks = [name for name, m in model.named_modules() if kinds is not None and type(m) in kinds]
    changes = Changes()
    patch.on_exit(changes.remove)
    canonicalise(model, changes)
    sums: dict[str, Sum] = {}
    for name in blocks:
        add = model.get_submodule(f"{name}.add" if name else "add")
        assert isinstance(add, Sum)
        sums[f"{name}.add" if name else "add"] = add
    return sums
