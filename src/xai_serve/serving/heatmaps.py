"""One engine result row -> one wire ``Heatmap``: the values (tensor form), the PNG overlay, the method's
statistics, the archive's credential, and the evidence some results carry (the ``decomposed`` method's
filters, the dissected layer's concept-labelled units).

A map with a NaN or an infinity is never served (:class:`~xai_serve.errors.NonFiniteResultError`).
"""

from __future__ import annotations

import math
from collections.abc import Mapping

import torch
from torch import nn
from xai_client.api.v1 import explain_pb2 as pb
from xai_client.overlay import overlay_png
from xai_client.values import encode_values

from xai_serve.errors import NonFiniteResultError
from xai_serve.explain import Attribution, Component, MethodSpec, ModelContext
from xai_serve.serving.components import echo_component
from xai_serve.serving.credentials import ServedCredentials
from xai_serve.serving.evidence import encode_filters
from xai_serve.serving.inputs import DecodedInput
from xai_serve.serving.ports import UnitEvidence

# PNG overlays are drawn at least this many pixels wide: a smaller map is upscaled by a whole factor
OVERLAY_MIN_WIDTH = 224


def overlay_scale(width: int) -> int:
    """The whole upscaling factor of a ``width``-pixel map's PNG overlay (see ``OVERLAY_MIN_WIDTH``)."""
    return max(1, math.ceil(OVERLAY_MIN_WIDTH / max(width, 1)))


class HeatmapEncoder:
    """Adds the heatmaps of one served model's results to its responses."""

    def __init__(
        self,
        model: nn.Module,
        context: ModelContext,
        methods: Mapping[str, MethodSpec],
        credentials: ServedCredentials,
        dissection: UnitEvidence | None,
    ) -> None:
        self.model = model
        self.context = context
        self.methods = methods
        self.credentials = credentials
        self.dissection = dissection

    def add(
        self,
        resp: pb.ExplainResponse,
        req: pb.ExplainRequest,
        name: str,
        target: int | Component,
        result: Attribution,
        j: int,
        decoded: DecodedInput,
    ) -> None:
        """Add method ``name``'s map of row ``j`` of ``result`` (request ``req``, ``target``) to ``resp``."""
        heat = result.heatmap[j]
        if not bool(torch.isfinite(heat).all()):
            raise NonFiniteResultError(
                f"method {name!r} produced NaN or infinite values; the map is not served"
            )
        values = heat.detach().float().cpu().numpy()
        spec = self.methods[name]
        signed, kind = spec.signed, spec.output
        if isinstance(target, Component):  # the explained channel, resolved by the engine
            explained = int(result.classes[j]) if result.classes else int(str(target.channel))
            h = resp.heatmaps.add(method=name, target=explained, signed=signed, kind=kind)
            echo_component(h, target, explained)
        else:
            explained = target
            h = resp.heatmaps.add(method=name, target=explained, signed=signed, kind=kind)
        if result.layer:
            h.layer = result.layer
        self.credentials.fill(h, name)
        if req.output in (pb.OUTPUT_FORM_UNSPECIFIED, pb.OUTPUT_FORM_TENSOR, pb.OUTPUT_FORM_BOTH):
            encode_values(values, req.values, h.values)  # ExplainRequest.values: reduction, value type
        scale = overlay_scale(values.shape[-1])
        if req.output in (pb.OUTPUT_FORM_PNG, pb.OUTPUT_FORM_BOTH):
            badge = h.credential.sanity_pass if h.credential.certified else None
            h.png = overlay_png(
                decoded.pixels.numpy(), values, signed=signed, kind=kind, scale=scale, badge=badge
            )
        for stat, per_sample in result.stats.items():
            try:
                h.stats[stat] = float(per_sample[j])
            except (IndexError, KeyError, TypeError, ValueError):  # no value for this sample
                continue
        encode_filters(h, result, j, decoded.pixels, values, scale)  # the `decomposed` method's filters
        if self.dissection is not None:  # concept-labelled units of the dissected layer (Heatmap.units)
            self.dissection.fill(
                h, req, self.model, decoded.x, explained, name, result, j, context=self.context
            )
