"""Models with several outputs, such as the General Pattern Theory network ResGPTNet (Tjoa & Guan).

Such a model returns a tuple and names its outputs by an ``output_names`` attribute (recorded as the
model card's ``outputs``). The first output is the classifier (class logits, (B, K)); the others are
*component* outputs, per-pixel class maps (B, C, H, W) whose channel 0 is the background.

* :func:`output_names` / :func:`primary`: the names of a model's outputs, its classifier output;
* :class:`ClassifierView`: the model seen through its classifier output, so code written for
  classifiers (accuracy, faithfulness, randomisation) runs on it unchanged;
* :func:`full_model_layer`: a layer named through the view, as the wrapped model names it.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn


def output_names(model: Any) -> tuple[str, ...]:
    """The names of ``model``'s outputs (its ``output_names`` attribute; empty for one output)."""
    return tuple(getattr(model, "output_names", ()) or ())


def primary(output: Any) -> torch.Tensor:
    """The classifier output: ``output`` itself, or the first of several outputs."""
    if isinstance(output, tuple | list):
        if not output:
            raise TypeError("the model returned no outputs")
        output = output[0]
    if not isinstance(output, torch.Tensor):
        raise TypeError(f"the model returned {type(output).__name__}, not a tensor")
    return output


class ClassifierView(nn.Module):
    """``view(x) == primary(model(x))``. The wrapped model is the view's only child, ``model``, so
    layer names gain a ``model.`` prefix (:func:`full_model_layer` takes it off)."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return primary(self.model(x))


def full_model_layer(name: str) -> str:
    """The wrapped model's name of a layer named through the view (``model.cf.c1`` -> ``cf.c1``)."""
    return name[len("model.") :] if name.startswith("model.") else name
