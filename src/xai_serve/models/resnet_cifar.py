"""CIFAR ResNet-20 (He et al. 2016 / akamaster ``pytorch_resnet_cifar10``), the Decomposing-the-Deep code
(docs/methods.md#decomp-model).

Three stages of three BasicBlocks (16/32/64 channels), option-A shortcuts (``PadShortcut``), global
average pool and ``linear``. Parameter and buffer names match the akamaster checkpoints (after the
``module.`` prefix is stripped), so ``resnet20-12fca82f.th`` loads with ``strict=True``. Every ReLU is a
distinct non-in-place module and the residual addition is a :class:`~xai_serve.models.layers.Sum`.
"""

from __future__ import annotations

import torch
from torch import nn

from xai_serve.models.layers import PadShortcut, Sum
from xai_serve.models.registry import register_model
from xai_serve.models.weights import load_state_dict_file


class CifarBasicBlock(nn.Module):
    expansion = 1

    def __init__(self, in_planes: int, planes: int, stride: int = 1) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(in_planes, planes, kernel_size=3, stride=stride, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.relu1 = nn.ReLU()
        self.conv2 = nn.Conv2d(planes, planes, kernel_size=3, stride=1, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.shortcut: nn.Module = nn.Identity()
        if stride != 1 or in_planes != planes:
            self.shortcut = PadShortcut(planes // 4)
        self.add = Sum()
        self.relu2 = nn.ReLU()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.relu1(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return self.relu2(self.add(out, self.shortcut(x)))


class CifarResNet(nn.Module):
    def __init__(self, num_blocks: tuple[int, int, int], num_classes: int = 10, in_chans: int = 3) -> None:
        super().__init__()
        self.in_planes = 16
        self.conv1 = nn.Conv2d(in_chans, 16, kernel_size=3, stride=1, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(16)
        self.relu = nn.ReLU()
        self.layer1 = self._make_layer(16, num_blocks[0], stride=1)
        self.layer2 = self._make_layer(32, num_blocks[1], stride=2)
        self.layer3 = self._make_layer(64, num_blocks[2], stride=2)
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.flatten = nn.Flatten()
        self.linear = nn.Linear(64, num_classes)
        for module in self.modules():
            if isinstance(module, nn.Linear | nn.Conv2d):
                nn.init.kaiming_normal_(module.weight)

    def _make_layer(self, planes: int, blocks: int, stride: int) -> nn.Sequential:
        layers = []
        for s in [stride] + [1] * (blocks - 1):
            layers.append(CifarBasicBlock(self.in_planes, planes, s))
            self.in_planes = planes
        return nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.layer3(self.layer2(self.layer1(out)))
        return self.linear(self.flatten(self.avgpool(out)))


@register_model("resnet20")
def resnet20(num_classes: int = 10, in_chans: int = 3, weights: str | None = None) -> CifarResNet:
    """ResNet-20 for 32x32 inputs; ``weights`` = local state_dict / akamaster checkpoint path."""
    model = CifarResNet((3, 3, 3), num_classes, in_chans)
    if weights is not None:
        model.load_state_dict(load_state_dict_file(weights))
    return model
