"""Class-specific influential filters (docs/methods.md#decomp-filters) and selectivity Psi.

For class ``c`` let ``H_c`` be the pooled final-conv features (N_c, D) of its training images, each
row L1-normalised (``r = h / sum h``; the ranking is unchanged).

* integer ``k``: every image votes for its ``k`` largest filters; ``S_c`` = the ``k`` filters with
  the most votes (ties: lower filter index first).
* fractional ``k`` in (0, 1): ``n_i`` = filters image ``i`` needs to reach L1 mass ``k``;
  ``_k = int(mean n_i)``; ``freq`` = vote frequency of the top-``_k`` filters; ``S_c`` = the upper
  tail of the ascending-sorted ``freq`` whose cumulative mass exceeds ``k`` (the Decomposing the Deep code's
  ``freq.argsort()[freq[freq.argsort()].cumsum() > k]``), listed most frequent first; the size
  varies per class.

Selectivity (NCA 2023): ``n`` = sorted, L1-normalised filters needed to reach mass ``m`` per image;
``Psi = (D - n) / D`` from the median and from the mean ``n`` over the class's images.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from xai_serve.errors import InvalidArgumentError


def check_k(k: float, num_filters: int) -> float | int:
    """``k`` as an int (a count, 1..D) or a float in (0, 1) (an L1 mass)."""
    if isinstance(k, bool):
        raise InvalidArgumentError("k must be a number")
    if float(k).is_integer() and k >= 1:
        if k > num_filters:
            raise InvalidArgumentError(f"k={int(k)} exceeds the {num_filters} filters of the layer")
        return int(k)
    if 0 < k < 1:
        return float(k)
    raise InvalidArgumentError(f"k must be an integer in 1..{num_filters} or a fraction in (0, 1), got {k}")


def l1_normalise(features: torch.Tensor) -> torch.Tensor:
    total = features.abs().sum(dim=1, keepdim=True)
    return features / total.clamp_min(torch.finfo(features.dtype).tiny)


def mass_counts(features: torch.Tensor, mass: float) -> torch.Tensor:
    """Per image, the number of largest L1-normalised filters needed to reach ``mass`` (N,)."""
    r = l1_normalise(features.double()).sort(dim=1, descending=True).values
    reached = r.cumsum(dim=1) >= mass - 1e-12
    first = reached.float().argmax(dim=1)  # first position reaching the mass
    return torch.where(reached.any(dim=1), first + 1, torch.full_like(first, r.shape[1]))


def vote_counts(features: torch.Tensor, k: int) -> torch.Tensor:
    """How many images have each filter among their ``k`` largest (D,), integer."""
    top = l1_normalise(features).topk(k, dim=1).indices
    return torch.bincount(top.flatten(), minlength=features.shape[1])


def _descending(counts: torch.Tensor) -> torch.Tensor:
    # stable sort on -counts: ties keep the lower filter index first
    return torch.sort(-counts.double(), stable=True).indices


def class_filters(features: torch.Tensor, k: float) -> list[int]:
    """``S_c`` for one class's features (N_c, D) and ``k`` (int or fraction)."""
    if features.ndim != 2 or features.shape[0] == 0:
        raise InvalidArgumentError(
            f"need a non-empty (images, filters) feature matrix, got {tuple(features.shape)}"
        )
    k = check_k(k, features.shape[1])
    if isinstance(k, int):
        return [int(f) for f in _descending(vote_counts(features, k))[:k]]
    kk = max(1, int(mass_counts(features, k).double().mean()))
    counts = vote_counts(features, kk).double()
    freq = counts / counts.sum()
    order = torch.sort(freq, stable=True).indices  # ascending
    tail = order[freq[order].cumsum(dim=0) > k]
    return [int(f) for f in tail.flip(0)]


def find_class_filters(
    features: torch.Tensor, labels: torch.Tensor, k: float, num_classes: int
) -> list[list[int]]:
    """``[S_0, ..., S_{K-1}]`` from pooled features (N, D) and labels (N,)."""
    out = []
    for c in range(num_classes):
        rows = features[labels == c]
        if rows.shape[0] == 0:
            raise InvalidArgumentError(f"class {c} has no images in the data: cannot find its filters")
        out.append(class_filters(rows, k))
    return out


@dataclass(frozen=True)
class Selectivity:
    mass: float
    filters_median: float
    filters_mean: float
    psi_median: float
    psi_mean: float


def selectivity(features: torch.Tensor, mass: float) -> Selectivity:
    """Psi of one class's features (N_c, D) at L1 mass ``mass`` in (0, 1]."""
    if not 0 < mass <= 1:
        raise InvalidArgumentError(f"selectivity mass must be in (0, 1], got {mass}")
    n = mass_counts(features, mass).double()
    d = features.shape[1]
    med, mean = float(n.quantile(0.5)), float(n.mean())
    return Selectivity(mass, med, mean, (d - med) / d, (d - mean) / d)
