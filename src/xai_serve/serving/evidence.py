"""Encoding the ``decomposed`` method's filter evidence into a wire ``Heatmap`` (``Heatmap.filters``).

Each listed filter becomes a ``FilterEvidence`` (filter index, contribution ``W[c, f] * h_f``, its
activation map upsampled to the input [H, W] as float32); the class logit, the bias and the
contribution of the unlisted filters are in ``Heatmap.stats`` (``logit``, ``bias``, ``others``). With
a PNG answer, the overlay shows the class map followed by the top filters' maps. Non-finite evidence
is never served (NonFiniteResultError).
"""

from __future__ import annotations

import numpy as np
import torch
from xai_client.api.v1 import explain_pb2 as pb
from xai_client.overlay import filters_overlay, to_png
from xai_client.tensors import to_proto

from xai_serve.errors import NonFiniteResultError
from xai_serve.explain import Attribution
from xai_serve.explain.decomposed import DecomposedAttribution

PNG_FILTERS = 4  # filter maps shown in the overlay PNG


def encode_filters(
    h: pb.Heatmap, result: Attribution, j: int, pixels: torch.Tensor | None, values: np.ndarray, scale: int
) -> None:
    """Fill ``h.filters`` from ``result.filters[j]`` (a no-op for results without filter evidence) and,
    if ``h.png`` is set, redraw it with the top filters' maps, upscaled ``scale`` times as the map's."""
    if not isinstance(result, DecomposedAttribution) or not result.filters:
        return
    ev = result.filters[j]
    if not (bool(torch.isfinite(ev.contributions).all()) and bool(torch.isfinite(ev.maps).all())):
        raise NonFiniteResultError(
            f"method {h.method!r} produced NaN or infinite filter evidence; not served"
        )
    maps = ev.maps.detach().float().cpu().numpy()
    for f, c, m in zip(ev.filters.tolist(), ev.contributions.tolist(), maps, strict=True):
        item = h.filters.add(filter=int(f), contribution=float(c))
        to_proto(np.ascontiguousarray(m, dtype=np.float32), item.map)
    if h.png and pixels is not None:
        badge = h.credential.sanity_pass if h.credential.certified else None
        h.png = to_png(
            filters_overlay(
                pixels.numpy(), values, list(maps), signed=h.signed, scale=scale, badge=badge, top=PNG_FILTERS
            )
        )
