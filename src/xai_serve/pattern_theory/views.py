"""``ClassifierView``: a multi-output model seen through its classifier output (the first one).

Evaluation suites written for classifiers (accuracy, faithfulness, single-pixel AOPC, randomisation)
run unchanged on seed A's ResGPTNet through this view: ``view(x) == model(x)[0]`` (``y``). The wrapped
model is the view's only child, ``model``, so layer names gain a ``model.`` prefix.
"""

from __future__ import annotations

import torch
from torch import nn

from xai_serve.explain.targets import primary


class ClassifierView(nn.Module):
    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return primary(self.model(x))


def full_model_layer(name: str) -> str:
    """The wrapped model's name of a layer named through the view (``model.cf.c1`` -> ``cf.c1``)."""
    return name[len("model.") :] if name.startswith("model.") else name
