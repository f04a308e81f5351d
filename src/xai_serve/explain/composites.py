"""LRP composites: which rule each linear layer gets (docs/methods.md#lrp-composites).

A composite is a function ``(LayerInfo, LrpSettings) -> Rule`` registered by name. Layers are the
``nn.Linear`` / ``nn.Conv1d`` / ``nn.Conv2d`` / ``nn.ConvTranspose2d`` modules in execution order
(a transposed convolution is a conv layer, as in Zennit). Rules for the other layer
types are fixed by the engine (:mod:`xai_serve.explain.lrp_engine`) and match Zennit's built-in composites:
ReLU and other activations pass relevance through, BatchNorm is merged into the preceding linear
layer (or passes relevance through when there is none), residual ``Sum`` and average pooling use the
``Norm`` rule (LRP-epsilon with the stabiliser, as a parameter-free linear layer), max pooling routes
relevance to the winner (its gradient), Flatten / Dropout / Identity pass it on.

=====================  ======================  =================  =============
composite              first (pixel) layer     conv layers        dense layers
=====================  ======================  =================  =============
epsilon_plus_flat      flat (first linear)     z+                 epsilon
epsilon_gamma_box      z^B (first conv only)   gamma              epsilon
epsilon_alpha2_beta1   -                       alpha2-beta1       epsilon
lrp0                   -                       LRP-0              LRP-0
epsilon                -                       epsilon            epsilon
gamma                  -                       gamma              gamma
alpha_beta             -                       alpha-beta         alpha-beta
zplus                  -                       z+                 z+
tutorial_mlp           z^B (first linear)      (as dense)         2nd: gamma 0.1; middle:
                                                                  epsilon 0.1*RMS(z); last: LRP-0
=====================  ======================  =================  =============

``first_rule`` (an LRP parameter) replaces the composite's rule for the first linear layer executed.
z^B bounds come from the input normalisation: ``low = (0 - mean) / std``, ``high = (1 - mean) / std``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from torch import nn

from xai_serve.explain.graph import CONV_TYPES
from xai_serve.explain.rules import AlphaBeta, Epsilon, Flat, Gamma, Rule, WSquare, ZBox, ZPlus


@dataclass(frozen=True)
class LayerInfo:
    name: str
    module: nn.Module
    index: int  # position among the linear layers, in execution order
    count: int  # number of linear layers
    first_conv: bool  # the first Conv layer executed

    @property
    def is_conv(self) -> bool:
        return isinstance(self.module, CONV_TYPES)

    @property
    def first(self) -> bool:
        return self.index == 0

    @property
    def last(self) -> bool:
        return self.index == self.count - 1


@dataclass(frozen=True)
class LrpSettings:
    epsilon: float
    gamma: float
    alpha: float
    beta: float
    stabilizer: float
    low: tuple[float, ...]
    high: tuple[float, ...]

    def rule(self, name: str) -> Rule:
        """A rule by its ``first_rule`` name."""
        return {
            "flat": lambda: Flat(self.stabilizer),
            "wsquare": lambda: WSquare(self.stabilizer),
            "zbox": lambda: ZBox(self.low, self.high, self.stabilizer),
            "epsilon": lambda: Epsilon(self.epsilon),
            "lrp0": lambda: Epsilon(0.0),
            "zplus": lambda: ZPlus(self.stabilizer),
            "gamma": lambda: Gamma(self.gamma, self.stabilizer),
            "alpha_beta": lambda: AlphaBeta(self.alpha, self.beta, self.stabilizer),
        }[name]()


Composite = Callable[[LayerInfo, LrpSettings], Rule]
COMPOSITES: dict[str, Composite] = {}
FIRST_RULES = ("auto", "flat", "wsquare", "zbox", "epsilon", "lrp0", "zplus", "gamma", "alpha_beta")


def register_composite(name: str) -> Callable[[Composite], Composite]:
    def decorator(fn: Composite) -> Composite:
        COMPOSITES[name] = fn
        return fn

    return decorator


@register_composite("epsilon_plus_flat")
def _epsilon_plus_flat(layer: LayerInfo, s: LrpSettings) -> Rule:
    if layer.first:
        return Flat(s.stabilizer)
    return ZPlus(s.stabilizer) if layer.is_conv else Epsilon(s.epsilon)


@register_composite("epsilon_gamma_box")
def _epsilon_gamma_box(layer: LayerInfo, s: LrpSettings) -> Rule:
    if layer.first_conv:
        return ZBox(s.low, s.high, s.stabilizer)
    return Gamma(s.gamma, s.stabilizer) if layer.is_conv else Epsilon(s.epsilon)


@register_composite("epsilon_alpha2_beta1")
def _epsilon_alpha2_beta1(layer: LayerInfo, s: LrpSettings) -> Rule:
    return AlphaBeta(2.0, 1.0, s.stabilizer) if layer.is_conv else Epsilon(s.epsilon)


@register_composite("lrp0")
def _lrp0(layer: LayerInfo, s: LrpSettings) -> Rule:
    return Epsilon(0.0)


@register_composite("epsilon")
def _epsilon(layer: LayerInfo, s: LrpSettings) -> Rule:
    return Epsilon(s.epsilon)


@register_composite("gamma")
def _gamma(layer: LayerInfo, s: LrpSettings) -> Rule:
    return Gamma(s.gamma, s.stabilizer)


@register_composite("alpha_beta")
def _alpha_beta(layer: LayerInfo, s: LrpSettings) -> Rule:
    return AlphaBeta(s.alpha, s.beta, s.stabilizer)


@register_composite("zplus")
def _zplus(layer: LayerInfo, s: LrpSettings) -> Rule:
    return ZPlus(s.stabilizer)


@register_composite("tutorial_mlp")
def _tutorial_mlp(layer: LayerInfo, s: LrpSettings) -> Rule:
    if layer.first:
        return ZBox(s.low, s.high, s.stabilizer)
    if layer.last:
        return Epsilon(0.0)
    if layer.index == 1:
        return Gamma(0.1, s.stabilizer)
    return Epsilon(0.1, norm_scale=True)
