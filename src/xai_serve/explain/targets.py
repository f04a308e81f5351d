"""Explanation targets: which scalar per sample an explanation explains.

A target is one of

* an ``int`` class index (the same for every sample; a decimal string is accepted from the wire),
* a sequence of ints (list, tuple, 1-D integer tensor), one per sample,
* ``"predicted"``: the arg-max class of each sample,
* a callable ``output -> Tensor[B]`` selecting one scalar per sample from the model output (e.g. a
  pixel of a generator map, or ``lambda out: out[:, 3] - out[:, 5]``).

:func:`select` validates the target against the actual model output and returns the per-sample
scores, raising :class:`~xai_serve.errors.InvalidTargetError` when the target does not fit.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch

from xai_serve.errors import InvalidTargetError

Target = int | str | Sequence[int] | torch.Tensor | Callable[[torch.Tensor], torch.Tensor]


@dataclass
class Selection:
    """The resolved target: ``scores`` (B,) still attached to the graph, ``classes`` when class-based."""

    scores: torch.Tensor
    classes: torch.Tensor | None


def class_indices(output: torch.Tensor, target: Target) -> torch.Tensor | None:
    """The (B,) class indices ``target`` names for ``output`` (B, C), or None for a callable target."""
    if callable(target) and not isinstance(target, torch.Tensor):
        return None
    if output.ndim != 2:
        raise InvalidTargetError(
            f"a class target needs a model output of shape (batch, classes), got {tuple(output.shape)}; "
            "pass a callable selecting one scalar per sample instead"
        )
    batch, num_classes = output.shape
    if isinstance(target, str):
        text = target.strip()
        if text == "predicted":
            return output.detach().argmax(dim=1)
        if text.lstrip("-").isdigit():
            target = int(text)
        else:
            raise InvalidTargetError(f"unknown target {target!r}: use an int, a list of ints or 'predicted'")
    if isinstance(target, bool):
        raise InvalidTargetError("a bool is not a class target")
    if isinstance(target, int):
        indices = torch.full((batch,), target, dtype=torch.long)
    else:
        if isinstance(target, torch.Tensor):
            if target.dtype.is_floating_point or target.dtype == torch.bool or target.ndim > 1:
                raise InvalidTargetError("a tensor target must be a 0-d or 1-d integer tensor")
            values = target.reshape(-1).tolist() if target.ndim == 1 else [int(target)] * batch
        else:
            try:
                values = list(target)
            except TypeError:
                raise InvalidTargetError(f"unsupported target {target!r}") from None
        if any(isinstance(v, bool) or not isinstance(v, int) for v in values):
            raise InvalidTargetError(f"class targets must be ints, got {values!r}")
        if len(values) != batch:
            raise InvalidTargetError(f"got {len(values)} targets for a batch of {batch} samples")
        indices = torch.tensor(values, dtype=torch.long)
    bad = [int(i) for i in indices if not 0 <= int(i) < num_classes]
    if bad:
        raise InvalidTargetError(f"target class {bad[0]} is out of range for {num_classes} classes")
    return indices.to(output.device)


def select(output: torch.Tensor, target: Target) -> Selection:
    """Validate ``target`` against ``output`` and return the per-sample scores it selects."""
    classes = class_indices(output, target)
    if classes is not None:
        return Selection(output.gather(1, classes[:, None])[:, 0], classes)
    assert callable(target)
    scores = target(output)
    if not isinstance(scores, torch.Tensor) or scores.shape != (output.shape[0],):
        shape = tuple(scores.shape) if isinstance(scores, torch.Tensor) else type(scores).__name__
        raise InvalidTargetError(
            f"a target callable must return one scalar per sample, shape ({output.shape[0]},), got {shape}"
        )
    if not scores.requires_grad:
        raise InvalidTargetError("the target callable's result does not depend on the model output")
    return Selection(scores, None)
