"""LRP's stabilised division: the denominators of every rule and of the ``Norm`` rule.

``stab(z) = z + eps * sign(z)`` with ``sign(0) = +1`` (Zennit's ``Stabilizer``); a quotient whose
stabilised denominator is exactly zero is 0 (:func:`divide`). The rules (:mod:`xai_serve.explain.rules`)
and the Norm Functions of a pass (:mod:`xai_serve.explain.passes`) divide through these functions.
"""

from __future__ import annotations

import functools

import torch


def stabilise(z: torch.Tensor, eps: float, norm_scale: bool = False) -> torch.Tensor:
    """``z + eps * sign(z)``, ``sign(0) = +1``; ``norm_scale``: eps times the per-sample RMS of z."""
    # copysign gives -eps at z = -0.0 where Zennit gives +eps; a -0.0 output only arises when every
    # contribution a_j w_jk is a zero, and then the relevance passed down (a_j w_jk s_k) is 0 either way
    if norm_scale:
        rms = (z**2).mean(dim=tuple(range(1, z.ndim)), keepdim=True).sqrt()
        return z + torch.copysign(eps * rms, z)
    if eps == 0:
        return z
    # one allocation: the signed stabiliser, then z added in place (the same sum, so the same rounding)
    return torch.copysign(torch.tensor(eps, dtype=z.dtype, device=z.device), z).add_(z)


def divide(relevance: torch.Tensor, den: torch.Tensor) -> torch.Tensor:
    """``relevance / den`` with ``0 / 0 := 0`` and ``r / 0 := 0``: an output whose (stabilised)
    denominator is exactly zero passes no relevance down (it is absorbed, as a bias would absorb it)
    instead of a NaN. Elsewhere the quotient is unchanged, so results equal Zennit's wherever Zennit's
    are finite. A zero denominator arises with LRP-0 (``epsilon = 0``) on a zero output, or when the
    stabiliser underflows the tensor's dtype."""
    zero = torch.zeros((), dtype=relevance.dtype, device=relevance.device)
    return torch.where(den == 0, zero, relevance / den)


@functools.lru_cache(maxsize=64)
def positive_in(eps: float, dtype: torch.dtype) -> bool:
    """Whether ``eps`` stays > 0 in ``dtype``: then ``z + eps * sign(z)`` is never 0 (``|z| + eps >= eps``)
    and :func:`quotient` needs no zero guard."""
    return eps > 0 and bool(torch.tensor(eps, dtype=dtype) > 0)


def quotient(relevance: torch.Tensor, z: torch.Tensor, eps: float, norm_scale: bool = False) -> torch.Tensor:
    """``relevance / stabilise(z)`` with :func:`divide`'s zero convention, in one allocation when the
    stabiliser cannot make a denominator zero (the common case: ``eps > 0`` representable in the dtype)."""
    den = stabilise(z, eps, norm_scale)
    if norm_scale or not positive_in(eps, z.dtype):
        return divide(relevance, den)
    return _div_into(relevance, den, fresh=den is not z)


def nonneg_quotient(relevance: torch.Tensor, z: torch.Tensor, eps: float) -> torch.Tensor:
    """:func:`quotient` for a denominator known to be ``>= 0`` (``W+ a + b+`` with ``a >= 0``): the
    stabilised value is ``z + eps`` (Zennit's ``sign(0) = +1``), one pass cheaper than the general form."""
    if not positive_in(eps, z.dtype):
        return quotient(relevance, z, eps)
    return _div_into(relevance, z + eps, fresh=True)


def _div_into(relevance: torch.Tensor, den: torch.Tensor, fresh: bool) -> torch.Tensor:
    """``relevance / den``, written over ``den`` when it is a temporary of the same shape."""
    if fresh and den.shape == relevance.shape and den.dtype == relevance.dtype:
        return torch.div(relevance, den, out=den)
    return relevance / den
