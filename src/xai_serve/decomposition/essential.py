"""The "essential features" Gaussian-noise test (docs/methods.md#decomp-essential).

For each class ``c``, on that class's images: ``h`` = the pooled final-conv features; replace
``h[:, S_c]`` by N(0, 1) noise (``noise_at_inf``) or the other filters by noise (``noise_at_noninf``)
and count the images the FULL (not decomposed) linear layer still assigns to ``c``. Noise comes from a
seeded ``torch.Generator`` (the Decomposing the Deep code set none). Result layout as that code's
``results_essential_features.json`` per run: ``{"<class>": {"noise_at_inf": n,
"noise_at_noninf": n, "images": N_c}}`` (``images`` added: the original's counts are out of 1000).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import torch
from torch import nn

from xai_serve.decomposition.features import capture
from xai_serve.errors import InvalidArgumentError
from xai_serve.models.decomposed import MaskedLinear, find_head


def essential_counts(
    model: nn.Module,
    batches: Iterable[tuple[torch.Tensor, torch.Tensor]],
    indices: Sequence[Sequence[int]],
    *,
    seed: int = 0,
    device: str | torch.device = "cpu",
) -> dict[str, dict[str, int]]:
    """Run the noise test over ``batches`` (images, labels); see the module doc."""
    head = find_head(model)
    if isinstance(head.linear, MaskedLinear):
        raise InvalidArgumentError(
            "the essential-feature test uses the full linear layer: pass the original model"
        )
    num_classes, num_filters = head.num_classes, head.num_filters
    if len(indices) != num_classes:
        raise InvalidArgumentError(f"{len(indices)} filter sets for {num_classes} classes")
    w = head.linear.weight.detach().to(device)
    b = (
        head.linear.bias.detach().to(device)
        if head.linear.bias is not None
        else torch.zeros(num_classes, device=device)
    )
    inf_mask = torch.zeros(num_classes, num_filters, dtype=torch.bool, device=device)
    for c, s in enumerate(indices):
        inf_mask[c, list(s)] = True
    gen = torch.Generator(device="cpu")
    gen.manual_seed(seed)
    counts = {c: {"noise_at_inf": 0, "noise_at_noninf": 0, "images": 0} for c in range(num_classes)}
    for x, y in batches:
        y = torch.as_tensor(y).long().to(device)
        h = capture(model, x.to(device), head).pooled
        m = inf_mask[y]  # (B, D): the influential filters of each image's own class
        noise1 = torch.randn(h.shape, generator=gen).to(h)
        noise2 = torch.randn(h.shape, generator=gen).to(h)
        h1 = torch.where(m, noise1, h)
        h2 = torch.where(m, h, noise2)
        p1 = (h1 @ w.T + b).argmax(dim=1)
        p2 = (h2 @ w.T + b).argmax(dim=1)
        for c in y.unique().tolist():
            sel = y == c
            counts[c]["images"] += int(sel.sum())
            counts[c]["noise_at_inf"] += int((p1[sel] == c).sum())
            counts[c]["noise_at_noninf"] += int((p2[sel] == c).sum())
    return {str(c): v for c, v in counts.items()}
