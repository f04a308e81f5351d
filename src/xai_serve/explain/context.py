"""What a method may know about the model besides its weights: the input normalisation, and the cache
of parameters derived from those weights that the model's holder owns.

Methods that work in pixel space (``class_image``) or need the pixel bounds of the normalised input
(LRP's z^B rule: ``low = (0 - mean) / std``, ``high = (1 - mean) / std``) read them from the one
explicit :class:`ModelContext` argument of :func:`~xai_serve.explain.create_explainer` /
:func:`~xai_serve.explain.explain_detailed`. Serving and evaluation build it from the model card;
it is never a request parameter (a client cannot send a different normalisation). Its
:class:`~xai_serve.explain.param_cache.DerivedParamCache` keeps LRP's derived weights between calls
that pass the same context (a serving worker passes its one context on every call).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from xai_serve.errors import InvalidParameterError
from xai_serve.explain.param_cache import DerivedParamCache

if TYPE_CHECKING:
    import torch


@dataclass(frozen=True)
class ModelContext:
    """Per-channel ``mean``/``std`` of the input normalisation ``x = (pixels - mean) / std``.

    The default (0, 1) means the model input is the pixels in [0, 1]. ``param_cache``: the derived
    parameters of the model (not part of the context's value: contexts compare by normalisation).
    """

    mean: tuple[float, ...] = (0.0,)
    std: tuple[float, ...] = (1.0,)
    param_cache: DerivedParamCache = field(default_factory=DerivedParamCache, compare=False, repr=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "mean", tuple(float(v) for v in self.mean))
        object.__setattr__(self, "std", tuple(float(v) for v in self.std))
        if not self.mean or len(self.mean) != len(self.std):
            raise InvalidParameterError(
                f"model context: {len(self.mean)} means but {len(self.std)} stds "
                "(need equal, non-zero counts)"
            )
        if any(not s > 0 or s == float("inf") for s in self.std) or any(
            m != m or abs(m) == float("inf") for m in self.mean
        ):
            raise InvalidParameterError(
                "model context: every std must be positive and finite, every mean finite"
            )

    @classmethod
    def of(
        cls, mean: Sequence[float], std: Sequence[float], param_cache: DerivedParamCache | None = None
    ) -> ModelContext:
        return cls(tuple(mean), tuple(std), param_cache or DerivedParamCache())

    @property
    def low(self) -> tuple[float, ...]:
        """The normalised value of a black pixel per channel."""
        return tuple((0.0 - m) / s for m, s in zip(self.mean, self.std, strict=True))

    @property
    def high(self) -> tuple[float, ...]:
        """The normalised value of a white pixel per channel."""
        return tuple((1.0 - m) / s for m, s in zip(self.mean, self.std, strict=True))

    def image_normalisation(self, xin: torch.Tensor, method: str) -> tuple[torch.Tensor, torch.Tensor]:
        """``(mean, std)`` as ``(1, C, 1, 1)`` tensors of ``xin``'s dtype and device, for a ``method``
        that optimises images in pixel space (``class_image``, ``filter_image``); a typed error when
        ``xin`` is not ``(B, C, H, W)`` or the context has neither 1 nor ``C`` channels."""
        import torch

        if xin.ndim != 4:
            raise InvalidParameterError(f"{method} needs (B, C, H, W) inputs, got {tuple(xin.shape)}")
        shape = (1, -1, 1, 1)
        mean = torch.tensor(self.mean, dtype=xin.dtype, device=xin.device).view(shape)
        std = torch.tensor(self.std, dtype=xin.dtype, device=xin.device).view(shape)
        if mean.numel() not in (1, xin.shape[1]):
            raise InvalidParameterError(
                f"model context: {mean.numel()} mean values for {xin.shape[1]} channels"
            )
        return mean, std


def quantised_pixels(z: torch.Tensor, mean: torch.Tensor, std: torch.Tensor) -> torch.Tensor:
    """Normalised images ``z`` back in pixel space: de-normalised, clipped to [0, 1], quantised to 1/255."""
    return ((z * std + mean).clamp(0, 1) * 255).round() / 255


#: The context of calls that pass none (pixels in [0, 1]). Its derived-parameter cache is shared by those
#: calls, as ``functools.lru_cache`` would be: bounded per model, each model held weakly (a dropped model
#: frees its entries), so repeated library calls on one model reuse LRP's derived weights. A caller that
#: owns its model (a serving worker, an evaluation run) passes its own context and cache.
DEFAULT_CONTEXT = ModelContext()
