"""``decomposed``: decomposed-layer evidence (seed E, methods.md E.3).

For the target class ``c`` and the model's head (global pooling of the last conv stage ``A`` ->
``h`` -> final linear layer ``W, b``), each filter's contribution is ``W[c, f] * h_f``; on a decomposed
model (:mod:`xai_serve.models.decomposed`) only the influential filters ``S_c`` have a nonzero weight,
on an undecomposed one every filter of the layer does. The result lists the ``top`` filters with the
largest contributions (largest first): index, contribution and the filter's activation map ``A_f``
upsampled to the input (H, W). ``stats``: ``bias`` (``b_c``), ``logit`` (the class logit) and
``others`` (the summed contributions of the filters not listed), so per sample
``sum(listed contributions) + others + bias == logit``. The heatmap is the class activation map of
the kept filters, ``sum_f W[c, f] * A_f`` upsampled and repeated over the input channels (for an
average-pooled head its spatial mean is ``logit - bias``).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
import torch.nn.functional as F

from xai_serve.explain.params import ParamSpec
from xai_serve.explain.registry import Attribution, Explainer, register_method
from xai_serve.explain.targets import Target, class_indices
from xai_serve.models.decomposed import find_head
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
    },
    signed=True,
)
class DecomposedExplainer(Explainer):
    """Per-filter contributions W[c,f]*h_f of the final layer (the influential filters of a decomposed model)
    with each filter's upsampled activation map."""

    def setup(self) -> None:
        self.head = find_head(self.model)

    def __call__(self, x: torch.Tensor, target: Target = "predicted") -> torch.Tensor:
        return self.attribute(x, target).heatmap

    def attribute(self, x: torch.Tensor, target: Target = "predicted") -> DecomposedAttribution:
        from xai_serve.decomposition.features import capture

        c = capture(self.model, x.detach(), self.head)
        classes = class_indices(c.logits, target)
        if classes is None:
            from xai_serve.errors import InvalidTargetError

            raise InvalidTargetError(
                "the decomposed method explains a class: give a class index or 'predicted'"
            )
        linear = self.head.linear
        weight = linear.weight.detach()
        if isinstance(linear, MaskedLinear):
            weight = weight * linear.mask
        w = weight[classes]  # (B, D)
        contrib = w * c.pooled  # (B, D)
        bias = linear.bias.detach()[classes] if linear.bias is not None else torch.zeros_like(contrib[:, 0])
        logit = c.logits.gather(1, classes[:, None])[:, 0]
        size = tuple(x.shape[2:])
        maps = c.maps
        if tuple(maps.shape[2:]) != size:
            maps = F.interpolate(maps, size=size, mode="bilinear", align_corners=False)
        cam = (w[:, :, None, None] * maps).sum(dim=1, keepdim=True)
        heat = cam.expand(-1, x.shape[1], *size).contiguous()
        top = int(self.params["top"])
        evidence: list[FilterEvidence] = []
        others: list[float] = []
        for i in range(x.shape[0]):
            kept = torch.nonzero(w[i] != 0).flatten()
            order = kept[torch.sort(contrib[i, kept], descending=True, stable=True).indices]
            listed, rest = order[:top], order[top:]
            evidence.append(
                FilterEvidence(listed.clone(), contrib[i, listed].clone(), maps[i, listed].clone())
            )
            others.append(float(contrib[i, rest].sum()))
        return DecomposedAttribution(
            heatmap=heat,
            stats={"bias": bias.tolist(), "logit": logit.tolist(), "others": others},
            logits=c.logits,
            classes=[int(k) for k in classes],
            filters=evidence,
            layer=self.head.feature_name,
        )
