"""Per-channel statistics of a split's images in pixel space (0..1), recorded in the model card
(``ModelCard.input_stats``) so that the served model's input drift can be measured against them
(live credentials: :mod:`xai_serve.evaluation.live_checks`)."""

from __future__ import annotations

import torch

from xai_serve.data.bundle import DatasetBundle

MAX_IMAGES = 4096  # enough for stable first and second moments; bounds the cost for large sets


def input_stats(bundle: DatasetBundle, max_images: int = MAX_IMAGES) -> dict[str, list[float]]:
    """``{"mean": [C], "std": [C], "n": [images]}`` of the first ``max_images`` images of ``bundle``."""
    total = sq = None
    pixels = 0
    n = min(len(bundle.dataset), max_images)  # type: ignore[arg-type]
    for i in range(n):
        x, _ = bundle.dataset[i]
        p = bundle.denormalise(x.double()).reshape(x.shape[0], -1)
        total = p.sum(dim=1) if total is None else total + p.sum(dim=1)
        sq = (p * p).sum(dim=1) if sq is None else sq + (p * p).sum(dim=1)
        pixels += p.shape[1]
    if total is None or sq is None:
        return {}
    mean = total / pixels
    std = torch.sqrt(torch.clamp(sq / pixels - mean * mean, min=0.0))
    return {"mean": [float(v) for v in mean], "std": [float(v) for v in std], "n": [float(n)]}
