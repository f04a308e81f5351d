"""SimpleNet (Hasanpour et al. 2016) in its CIFAR/MNIST form
(the SimpleNet study, docs/methods.md#simplenet-model).

Built from a config list: an int is a 3x3 conv block, ``(int, "k1")`` a 1x1 conv block and ``"p"`` a
2x2 max-pool followed by ``Dropout2d``. A conv block is ``Conv2d -> BatchNorm2d(eps 1e-5, momentum 0.05)
-> ReLU`` plus ``Dropout2d`` unless the next entry is a pool or the block is the last one, which gives
the ``features`` module indices listed in docs/methods.md#simplenet-model
(the GBP / filter tools index ``features``). Every ReLU is its own non-in-place module.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from xai_serve.models.registry import register_model

ConfigEntry = int | str | tuple[int, str]

CONFIG_310K: tuple[ConfigEntry, ...] = (
    64,
    32,
    32,
    32,
    "p",
    32,
    32,
    64,
    "p",
    64,
    64,
    "p",
    128,
    (256, "k1"),
    (64, "k1"),
    "p",
    64,
)
CONFIG_5M: tuple[ConfigEntry, ...] = (
    64,
    128,
    128,
    128,
    "p",
    128,
    128,
    256,
    "p",
    256,
    256,
    "p",
    512,
    "p",
    (2048, "k1"),
    (256, "k1"),
    "p",
    256,
)


class SimpleNet(nn.Module):
    """``features`` (config-built) -> global max-pool -> Dropout2d -> flatten -> ``classifier`` Linear."""

    def __init__(
        self,
        config: Sequence[ConfigEntry],
        num_classes: int = 10,
        in_chans: int = 1,
        drop_rate: float = 0.0,
        pool_drop_rate: float = 0.1,
        head_drop_rate: float = 0.0,
    ) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        channels = in_chans
        for i, entry in enumerate(config):
            if entry == "p":
                layers += [nn.MaxPool2d(2, 2), nn.Dropout2d(pool_drop_rate)]
                continue
            if isinstance(entry, tuple):
                out, kind = entry
                kernel, padding = (1, 0) if kind == "k1" else (3, 1)
            else:
                out, kernel, padding = int(entry), 3, 1
            layers += [
                nn.Conv2d(channels, out, kernel_size=kernel, stride=1, padding=padding, bias=True),
                nn.BatchNorm2d(out, eps=1e-5, momentum=0.05),
                nn.ReLU(),
            ]
            is_last = i == len(config) - 1
            if not is_last and config[i + 1] != "p":
                layers.append(nn.Dropout2d(drop_rate))
            channels = out
        self.features = nn.Sequential(*layers)
        self.pool = nn.AdaptiveMaxPool2d(1)
        self.drop = nn.Dropout2d(head_drop_rate)
        self.flatten = nn.Flatten()
        self.classifier = nn.Linear(channels, num_classes)
        for module in self.features:
            if isinstance(module, nn.Conv2d):
                nn.init.xavier_uniform_(module.weight, gain=nn.init.calculate_gain("relu"))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.features(x)
        x = self.drop(self.pool(x))
        return self.classifier(self.flatten(x))


@register_model("simplenet_310k")
def simplenet_310k(
    num_classes: int = 10, in_chans: int = 1, drop_rate: float = 0.0, pool_drop_rate: float = 0.1
) -> SimpleNet:
    """MNIST SimpleNet used by the SimpleNet study: 311,210 parameters for one input channel."""
    return SimpleNet(CONFIG_310K, num_classes, in_chans, drop_rate, pool_drop_rate)


@register_model("simplenet_5m")
def simplenet_5m(
    num_classes: int = 10, in_chans: int = 3, drop_rate: float = 0.0, pool_drop_rate: float = 0.1
) -> SimpleNet:
    """CIFAR-10 SimpleNet with the extra pool (``simplenet_cifar_5m_extra_pool``), about 5.48M parameters."""
    return SimpleNet(CONFIG_5M, num_classes, in_chans, drop_rate, pool_drop_rate)
