"""Known foreign state_dict layouts of the registry's architectures, mapped onto its key names.

``simplenet-cifar10-released``: the released CIFAR-10 SimpleNet checkpoint (Hasanpour et al. 2016,
``simplenet_cifar_5m_extra_pool``, 95.51 %) builds ``features`` from ``Conv2d -> BatchNorm2d -> ReLU``
blocks with no Dropout2d after a convolution; only each ``MaxPool2d`` is followed by a
``Dropout2d``. The registry's ``simplenet_5m`` also places a ``Dropout2d`` after every convolution block
not followed by a pool or last, so its ``features.N`` indices run ahead. The map below is computed from
the published configuration (:data:`~xai_serve.models.simplenet.CONFIG_5M`): walking it, each
convolution block occupies 3 released indices (4 here when a dropout follows) and each pool 2.
The classifier (``classifier.weight`` / ``.bias``) keeps its name.

The Decomposing-the-Deep ``resnet20-12fca82f.th`` (Badola et al.) and torchvision-layout files (a
Places365 ResNet-18) need no map: their keys are the registry's once the ``module.`` prefix is gone.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch

from xai_serve.models.simplenet import CONFIG_5M, ConfigEntry


@dataclass(frozen=True)
class Layout:
    """A named key layout of ``arch``: ``convert`` returns the state_dict in registry names, or None
    when the file is not in this layout."""

    name: str
    arch: str
    convert: Callable[[dict[str, torch.Tensor]], dict[str, torch.Tensor] | None]


def simplenet_released_indices(config: Sequence[ConfigEntry]) -> dict[int, int]:
    """``features`` index in the released layout -> index in the registry's SimpleNet, for every
    module with parameters or buffers (convolutions and batch norms)."""
    released, ours, mapping = 0, 0, {}
    for i, entry in enumerate(config):
        if entry == "p":
            released, ours = released + 2, ours + 2  # MaxPool2d, Dropout2d in both
            continue
        mapping[released] = ours  # Conv2d
        mapping[released + 1] = ours + 1  # BatchNorm2d
        released, ours = released + 3, ours + 3  # + ReLU
        if i < len(config) - 1 and config[i + 1] != "p":
            ours += 1  # the registry's Dropout2d after a convolution block
    return mapping


def _rename_features(
    state: dict[str, torch.Tensor], mapping: dict[int, int]
) -> dict[str, torch.Tensor] | None:
    out: dict[str, torch.Tensor] = {}
    for key, value in state.items():
        head, _, rest = key.partition(".")
        if head != "features":
            out[key] = value
            continue
        index, _, leaf = rest.partition(".")
        if not index.isdigit() or int(index) not in mapping:
            return None
        out[f"features.{mapping[int(index)]}.{leaf}"] = value
    return out


def _simplenet_released(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor] | None:
    return _rename_features(state, simplenet_released_indices(CONFIG_5M))


LAYOUTS = (Layout("simplenet-cifar10-released", "simplenet_5m", _simplenet_released),)


def layouts_for(arch: str) -> list[Layout]:
    """The known foreign layouts of the registry model ``arch``."""
    return [layout for layout in LAYOUTS if layout.arch == arch]
