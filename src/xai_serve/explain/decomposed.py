"""``decomposed``: decomposed-layer evidence (Decomposing the Deep, docs/methods.md#decomp-layer).

For the target class ``c`` and a model whose head is global pooling of the last conv stage ``A`` ->
``h`` -> one linear layer ``W, b`` (ResNet-20, torchvision ResNets, SimpleNet), each filter's
contribution to the class logit is exactly ``W[c, f] * h_f``: on a decomposed model
(:mod:`xai_serve.models.decomposed`) only the influential filters ``S_c`` have a nonzero weight, on an
undecomposed one every filter of the layer does. The result lists the ``top`` filters with the largest
contributions (largest first): index, contribution and the filter's activation map ``A_f`` upsampled
to the input (H, W). ``stats``: ``logit`` (the class logit), ``bias`` (``b_c``) and ``others`` (the
summed contributions of the filters not listed), so per sample
``sum(listed contributions) + others + bias == logit``. The heatmap is the class activation map
``sum_f W[c, f] * A_f`` upsampled and repeated over the input channels (for an average-pooled head its
spatial mean is ``logit - bias``).

On a model without such a head (e.g. conv layers then a multi-layer perceptron) the filters are the
channels of the layer ``layer`` (default: Grad-CAM's default layer) and each contribution is the
first-order (gradient x activation) term ``sum_hw A_f * d logit_c / d A_f``, which equals ``W[c, f] h_f``
for a pooled linear head; ``bias`` is then the remainder ``logit - sum_f contribution_f`` and the
heatmap ``h*w * sum_f A_f * d logit_c / d A_f``. ``stats["exact"]`` says which case applied (1 / 0).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import torch
import torch.nn.functional as F

from xai_serve.errors import InvalidTargetError, UnsupportedLayerError
from xai_serve.explain.backprop import BackpropExplainer, BackpropRequest, BackpropResult
from xai_serve.explain.layers import LayerChoice
from xai_serve.explain.params import ParamSpec
from xai_serve.explain.registry import Attribution, register_method
from xai_serve.models.decomposed import Head, find_head
from xai_serve.models.layers import MaskedLinear


@dataclass
class FilterEvidence:
    """One sample's filters, largest contribution first: ``filters`` (n,) int64, ``contributions`` (n,),
    ``maps`` (n, H, W) activation maps upsampled to the input."""

    filters: torch.Tensor
    contributions: torch.Tensor
    maps: torch.Tensor


@dataclass
class DecomposedAttribution(Attribution):
    """An :class:`Attribution` with per-sample :class:`FilterEvidence` (``filters``)."""

    filters: list[FilterEvidence] = field(default_factory=list)


@register_method(
    "decomposed",
    params={
        "top": ParamSpec(
            "int",
            10,
            "at most this many filters are listed, largest contribution first",
            minimum=1,
            maximum=4096,
        ),
        "layer": ParamSpec(
            "layer",
            None,
            "conv layer whose channels are the filters, for models without a pooled linear head",
        ),
    },
    signed=True,
)
class DecomposedExplainer(BackpropExplainer):
    """Per-filter contributions W[c,f]*h_f to the class logit (the influential filters of a decomposed
    model) with each filter's upsampled activation map."""

    head: Head | None

    def setup(self) -> None:
        self.choice: LayerChoice | None = None
        try:
            self.head = find_head(self.model)
        except UnsupportedLayerError:
            self.head = None
        if self.head is not None and self.params["layer"] is None:
            modules = dict(self.model.named_modules())
            if self.head.feature_name not in modules:
                raise UnsupportedLayerError(f"cannot find the module feeding {self.head.pool_name}")
            self.layer_name, self.layer = self.head.feature_name, modules[self.head.feature_name]
        else:
            self.head = None  # an explicit layer, or no pooled linear head: first-order terms at a layer
            self.choice = LayerChoice(self.model, self.params["layer"])

    def prepare(self, x: torch.Tensor) -> None:
        if self.choice is not None:
            self.layer_name, self.layer = self.choice.resolve(x)

    def request(self) -> BackpropRequest:
        return BackpropRequest(layers={self.layer_name: self.layer})

    def finish(self, result: BackpropResult) -> DecomposedAttribution:
        classes = result.selection.classes
        if classes is None:
            raise InvalidTargetError(
                "the decomposed method needs class targets (class indices or 'predicted')"
            )
        acts = result.activations[self.layer_name]
        if acts.ndim != 4:
            raise UnsupportedLayerError(
                f"layer {self.layer_name!r} gives {tuple(acts.shape)}, not (B, C, H, W) filter maps"
            )
        logit = result.selection.scores
        if self.head is not None:
            linear = self.head.linear
            weight = linear.weight.detach()
            if isinstance(linear, MaskedLinear):
                weight = weight * linear.mask
            w = weight[classes].to(acts)  # (B, D)
            pooled = self.head.pool(acts).flatten(1)
            contrib = w * pooled
            bias = (
                linear.bias.detach()[classes].to(acts) if linear.bias is not None else torch.zeros_like(logit)
            )
            cam = (w[:, :, None, None] * acts).sum(dim=1, keepdim=True)
            kept = w != 0
        else:
            grads = result.layer_grads[self.layer_name]
            contrib = (acts * grads).sum(dim=(2, 3))
            bias = logit - contrib.sum(dim=1)
            cam = (acts * grads).sum(dim=1, keepdim=True) * (acts.shape[2] * acts.shape[3])
            kept = torch.ones_like(contrib, dtype=torch.bool)
        size = tuple(result.x.shape[2:])
        maps = acts
        if tuple(maps.shape[2:]) != size:
            maps = F.interpolate(maps, size=size, mode="bilinear", align_corners=False)
            cam = F.interpolate(cam, size=size, mode="bilinear", align_corners=False)
        heat = cam.expand(-1, result.x.shape[1], *size).contiguous()
        top = int(self.params["top"])
        evidence: list[FilterEvidence] = []
        others: list[float] = []
        for i in range(acts.shape[0]):
            idx = torch.nonzero(kept[i]).flatten()
            order = idx[torch.sort(contrib[i, idx], descending=True, stable=True).indices]
            listed, rest = order[:top], order[top:]
            evidence.append(
                FilterEvidence(listed.clone(), contrib[i, listed].clone(), maps[i, listed].clone())
            )
            others.append(float(contrib[i, rest].sum()))
        exact = 1.0 if self.head is not None else 0.0
        return DecomposedAttribution(
            heatmap=heat,
            stats={
                "logit": logit.tolist(),
                "bias": bias.tolist(),
                "others": others,
                "exact": [exact] * acts.shape[0],
            },
            logits=result.logits,
            classes=[int(k) for k in classes],
            layer=self.layer_name,
            filters=evidence,
        )

    def unit_contributions(
        self, x: torch.Tensor, target: int, layer: str, attribution: Attribution, row: int
    ) -> np.ndarray | None:
        """The listed filters of row ``row`` with their contributions, when ``layer`` is the method's."""
        if attribution.layer != layer or not isinstance(attribution, DecomposedAttribution):
            return None
        if row >= len(attribution.filters):
            return None
        ev = attribution.filters[row]
        return np.stack(
            [
                ev.filters.detach().cpu().numpy().astype(np.float64),
                ev.contributions.detach().cpu().numpy().astype(np.float64),
            ],
            axis=1,
        )
