"""ResGPTNet (General Pattern Theory, docs/methods.md#gpt-model): a ResNet classifier with a U-Net-like
expansion path.

``forward(x)`` of a (B, 1, 28, 28) image returns three outputs, named by :attr:`ResGPTNet.output_names`
(and by the model card's ``outputs``): ``y`` (B, 10) class logits, ``yg`` (B, 4, 28, 28) per-pixel
generator type and ``ys`` (B, 8, 28, 28) per-pixel bond-symmetry-group element. The first output is
the classifier. ``output_mode="prediction_only"`` returns ``y`` alone (the original code's switch).

Layout (the original General Pattern Theory code's widths in brackets; ``resgptnet34`` uses exactly these)::

    xc = channel_adj(x)       1x1 conv 1 -> 3, no bias, weight initialised to 1 (trained)
    x0 = cf(xc)               ConvPipe(3, cf)       [64]  28x28
    x1 = relu(bn1(conv1(xc)))  stem                 [64]  14x14
    x2 = layer1(maxpool(x1))                         [64]  7x7
    x3 = layer2(x2), x4 = layer3(x3), x5 = layer4(x4)    [128 4x4, 256 2x2, 512 1x1]
    y  = fc(x5)               1x1 conv -> 10, no bias (no pooling: layer4 is 1x1)
    v2 = cat(x2, eb2(x3)[..., 1:-1, 1:-1]);  v1 = cat(x1, eb1(v2)[..., :-1, :-1])
    v0 = cat(x0, eb0(v1)[..., :-1, :-1]);    yg = cyg(v0);  ys = cys(v0)
    ExpansionBlock = ConvTranspose2d(k3, stride 2, no bias) -> BN -> ReLU
    ConvPipe       = Conv2d(k3, no padding, no bias) -> ReLU -> ConvTranspose2d(k3, no bias) -> ReLU

The backbone is a torchvision-style ResNet of ``BasicBlock`` s (same module and state_dict names as
torchvision's ``resnet34`` without its unused ``avgpool``/``fc``), built from scratch: nothing is
downloaded (the original's ImageNet weights are not available here). Every ReLU is its own non-in-place
module (the model is canonicalised at construction), so every method of the engine works on it.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from xai_serve.models.canonicalise import canonicalise
from xai_serve.models.randomisation_levels import RandomisationLevel
from xai_serve.models.registry import register_model
from xai_serve.models.weights import load_state_dict_file

OUTPUT_NAMES = ("y", "yg", "ys")
#: the noise of the head and expansion levels of the component-wise check (Tjoa & Guan's
#: ``noise_attenuation``)
COMPONENT_NOISE_ATTENUATION = 0.5


class ConvPipe(nn.Module):
    """Conv2d(k3, valid) -> ReLU -> ConvTranspose2d(k3) -> ReLU: same spatial size in and out."""

    def __init__(self, cin: int, cout: int) -> None:
        super().__init__()
        self.c1 = nn.Conv2d(cin, cout, 3, bias=False)
        self.relu1 = nn.ReLU()
        self.c2 = nn.ConvTranspose2d(cout, cout, 3, bias=False)
        self.relu2 = nn.ReLU()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.relu2(self.c2(self.relu1(self.c1(x))))


class ExpansionBlock(nn.Module):
    """ConvTranspose2d(k3, stride 2, no bias) -> BatchNorm -> ReLU (doubles the size, + 1)."""

    def __init__(self, cin: int, cout: int) -> None:
        super().__init__()
        self.c1 = nn.ConvTranspose2d(cin, cout, 3, stride=2, bias=False)
        self.bn1 = nn.BatchNorm2d(cout)
        self.act = nn.ReLU()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.act(self.bn1(self.c1(x)))


def _layer(cin: int, cout: int, blocks: int, stride: int) -> nn.Sequential:
    from torchvision.models.resnet import BasicBlock  # here, not at import: a worker's cold start

    downsample = None
    if stride != 1 or cin != cout:
        downsample = nn.Sequential(nn.Conv2d(cin, cout, 1, stride=stride, bias=False), nn.BatchNorm2d(cout))
    layers = [BasicBlock(cin, cout, stride, downsample)]
    layers += [BasicBlock(cout, cout) for _ in range(blocks - 1)]
    return nn.Sequential(*layers)


class Backbone(nn.Module):
    """torchvision's ResNet feature extractor (conv1, bn1, relu, maxpool, layer1..4) of BasicBlocks."""

    layer1: nn.Sequential
    layer2: nn.Sequential
    layer3: nn.Sequential
    layer4: nn.Sequential

    def __init__(self, blocks: Sequence[int], widths: Sequence[int], in_chans: int = 3) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(in_chans, widths[0], 7, stride=2, padding=3, bias=False)
        self.bn1 = nn.BatchNorm2d(widths[0])
        self.relu = nn.ReLU()
        self.maxpool = nn.MaxPool2d(3, stride=2, padding=1)
        cin = widths[0]
        for i, (n, w) in enumerate(zip(blocks, widths, strict=True)):
            setattr(self, f"layer{i + 1}", _layer(cin, w, n, 1 if i == 0 else 2))
            cin = w
        for m in self.modules():  # torchvision's initialisation
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
            elif isinstance(m, nn.BatchNorm2d):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)


class ResGPTNet(nn.Module):
    """Classifier + expansion path with heads ``y``, ``yg``, ``ys`` (see the module doc)."""

    output_names = OUTPUT_NAMES

    def __init__(
        self,
        blocks: Sequence[int] = (3, 4, 6, 3),
        widths: Sequence[int] = (64, 128, 256, 512),
        expansion: int = 64,
        pipe: int = 64,
        num_classes: int = 10,
        n_types: int = 4,
        n_bsg: int = 8,
        output_mode: str | None = None,
    ) -> None:
        super().__init__()
        if len(blocks) != 4 or len(widths) != 4:
            raise ValueError("blocks and widths need 4 entries (layer1..layer4)")
        self.output_mode = output_mode
        self.num_classes = num_classes
        self.channel_adj = nn.Conv2d(1, 3, 1, bias=False)
        nn.init.ones_(self.channel_adj.weight)
        self.cf = ConvPipe(3, pipe)
        self.backbone: Backbone = Backbone(blocks, widths)
        self.fc = nn.Conv2d(widths[3], num_classes, 1, bias=False)
        self.eb2 = ExpansionBlock(widths[1], expansion)
        self.eb1 = ExpansionBlock(widths[0] + expansion, expansion)
        self.eb0 = ExpansionBlock(widths[0] + expansion, expansion)
        self.cyg = ConvPipe(pipe + expansion, n_types)
        self.cys = ConvPipe(pipe + expansion, n_bsg)

    def forward(self, x: torch.Tensor) -> torch.Tensor | tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        b: Backbone = self.backbone
        xc = self.channel_adj(x)
        x1 = b.relu(b.bn1(b.conv1(xc)))
        x2 = b.layer1(b.maxpool(x1))
        x3 = b.layer2(x2)
        x5 = b.layer4(b.layer3(x3))
        y = self.fc(x5).reshape(x.shape[0], self.num_classes)
        if self.output_mode == "prediction_only":
            return y
        x0 = self.cf(xc)
        v2 = torch.cat((x2, self.eb2(x3)[:, :, 1:-1, 1:-1]), dim=1)
        v1 = torch.cat((x1, self.eb1(v2)[:, :, :-1, :-1]), dim=1)
        v0 = torch.cat((x0, self.eb0(v1)[:, :, :-1, :-1]), dim=1)
        return y, self.cyg(v0), self.cys(v0)

    def component_levels(self) -> list[RandomisationLevel]:
        """The six cumulative, top-down levels of the component-wise cascading randomisation of
        ``yg`` / ``ys`` (General Pattern Theory, Tjoa & Guan, ``compute_correlationsGC``):

        1. the heads ``cyg.c1``, ``cyg.c2``, ``cys.c1``, ``cys.c2`` weights <- ``max(w) * U(-1, 1) * 0.5``
           (``max``, not ``max |w|``); 2. + ``eb2`` (ConvTranspose weight, BN weight), 3. + ``eb1``,
           4. + ``eb0`` (same noise); 5. + backbone ``layer2``, 6. + ``layer1`` (every block's conv/bn
           weights and biases, not the downsample branch) <- ``0.1 * N(0, 1)``.
        """
        names = dict(self.named_parameters())

        def weights(*modules: str) -> tuple[str, ...]:
            return tuple(n for m in modules for n in (f"{m}.weight",) if n in names)

        def block(prefix: str) -> tuple[str, ...]:
            return tuple(n for n in names if n.startswith(prefix + ".") and ".downsample." not in n)

        a = COMPONENT_NOISE_ATTENUATION
        return [
            RandomisationLevel(
                "heads", weights("cyg.c1", "cyg.c2", "cys.c1", "cys.c2"), (), "max_uniform", a
            ),
            RandomisationLevel("eb2", weights("eb2.c1", "eb2.bn1"), (), "max_uniform", a),
            RandomisationLevel("eb1", weights("eb1.c1", "eb1.bn1"), (), "max_uniform", a),
            RandomisationLevel("eb0", weights("eb0.c1", "eb0.bn1"), (), "max_uniform", a),
            RandomisationLevel("backbone.layer2", block("backbone.layer2"), (), "normal", 0.1),
            RandomisationLevel("backbone.layer1", block("backbone.layer1"), (), "normal", 0.1),
        ]


def _build(weights: str | None, **kwargs: object) -> ResGPTNet:
    model = ResGPTNet(**kwargs)  # type: ignore[arg-type]
    if weights is not None:
        model.load_state_dict(load_state_dict_file(weights))
    canonicalise(model)
    return model


@register_model("resgptnet34")
def resgptnet34(num_classes: int = 10, weights: str | None = None) -> nn.Module:
    """The General Pattern Theory ResGPTNet34
    (ResNet-34 backbone from scratch, expansion width 64; ~21.6M parameters)."""
    return _build(weights, num_classes=num_classes)


@register_model("resgptnet_small")
def resgptnet_small(num_classes: int = 10, weights: str | None = None, width: int = 16) -> nn.Module:
    """A narrow ResGPTNet for 2 CPU cores: one BasicBlock per stage, widths ``width * (1, 2, 4, 8)``,
    expansion/pipe width ``width``; same outputs and layer names as ``resgptnet34``."""
    w = int(width)
    return _build(
        weights,
        num_classes=num_classes,
        blocks=(1, 1, 1, 1),
        widths=(w, 2 * w, 4 * w, 8 * w),
        expansion=w,
        pipe=w,
    )
