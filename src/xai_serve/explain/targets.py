"""Explanation targets: which scalar per sample an explanation explains.

A target is one of

* an ``int`` class index (the same for every sample; a decimal string is accepted from the wire),
* a sequence of ints (list, tuple, 1-D integer tensor), one per sample,
* ``"predicted"``: the arg-max class of each sample,
* a callable ``output -> Tensor[B]`` selecting one scalar per sample from the model output (e.g. a
  pixel of a generator map, or ``lambda out: out[:, 3] - out[:, 5]``),
* a :class:`Component` (or a sequence of them, one per sample): one scalar of any output of a model with
  several outputs, ``output[k][b, channel, row, col]`` (the General Pattern Theory component-wise
  explanations; the channel may be ``"predicted"``, the arg-max channel at that pixel of each sample).

A model with several outputs returns a tuple; it names them by an ``output_names`` attribute (also
recorded as the model card's ``outputs``). The first output is the classifier: class targets
(int / list / ``"predicted"`` / callable) apply to it.

:func:`select` validates the target against the actual model output and returns the per-sample
scores, raising :class:`~xai_serve.errors.InvalidTargetError` when the target does not fit.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import torch

from xai_serve.errors import InvalidTargetError
from xai_serve.models.multi_output import primary


@dataclass(frozen=True)
class Component:
    """The scalar ``output[b, channel, row, col]`` of the model output named ``output`` (or its index).

    ``channel="predicted"`` takes each sample's arg-max channel at (row, col).
    """

    output: str | int
    row: int
    col: int
    channel: int | str = "predicted"


Target = (
    int
    | str
    | Sequence[int]
    | Sequence[int | str | Component]
    | torch.Tensor
    | Callable[[torch.Tensor], torch.Tensor]
    | Component
)


def _is_components(target: Any) -> bool:
    if isinstance(target, Component):
        return True
    return isinstance(target, list | tuple) and any(isinstance(t, Component) for t in target)


def _output_index(outputs: Sequence[torch.Tensor], names: Sequence[str], output: str | int) -> int:
    if isinstance(output, bool):
        raise InvalidTargetError("a component's output must be a name or an index")
    if isinstance(output, int):
        if not 0 <= output < len(outputs):
            raise InvalidTargetError(f"output index {output} is out of range for {len(outputs)} outputs")
        return output
    if output in names:
        return list(names).index(output)
    known = ", ".join(repr(n) for n in names) if names else "none (the model names no outputs)"
    raise InvalidTargetError(f"unknown output {output!r}; the model's outputs: {known}")


def select_component(
    output: Any, targets: Component | Sequence[Component], names: Sequence[str] = ()
) -> Selection:
    """The per-sample scalars ``outputs[k][b, c_b, row_b, col_b]``; ``classes`` holds the channels.

    A per-sample list may mix components with class targets (an int or "predicted", on the classifier)."""
    outputs = list(output) if isinstance(output, tuple | list) else [output]
    batch = primary(output).shape[0]
    items = [targets] * batch if isinstance(targets, Component) else list(targets)
    if len(items) != batch:
        raise InvalidTargetError(f"got {len(items)} component targets for a batch of {batch} samples")
    scores, channels = [], []
    for b, t in enumerate(items):
        if not isinstance(t, Component):
            picked = class_indices(outputs[0][b : b + 1], t)
            assert picked is not None  # t is an int or a string here, not a callable
            c = int(picked[0])
            scores.append(outputs[0][b, c])
            channels.append(c)
            continue
        k = _output_index(outputs, names, t.output)
        out = outputs[k]
        label = names[k] if k < len(names) else str(k)
        if out.ndim != 4:
            raise InvalidTargetError(
                f"output {label!r} has shape {tuple(out.shape)}; a component target needs a "
                "(batch, channels, height, width) map"
            )
        _, n_channels, height, width = out.shape
        for what, value, size in (("row", t.row, height), ("col", t.col, width)):
            if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value < size:
                raise InvalidTargetError(
                    f"{what} {value!r} is out of range for output {label!r} of size {height}x{width}"
                )
        if isinstance(t.channel, str):
            if t.channel.strip() != "predicted":
                raise InvalidTargetError(f"a component's channel is an int or 'predicted', not {t.channel!r}")
            c = int(out[b, :, t.row, t.col].detach().argmax())
        elif isinstance(t.channel, bool) or not isinstance(t.channel, int):
            raise InvalidTargetError(f"a component's channel is an int or 'predicted', not {t.channel!r}")
        else:
            c = t.channel
            if not 0 <= c < n_channels:
                raise InvalidTargetError(
                    f"channel {c} is out of range for the {n_channels} channels of output {label!r}"
                )
        scores.append(out[b, c, t.row, t.col])
        channels.append(c)
    device = scores[0].device
    return Selection(torch.stack(scores), torch.tensor(channels, dtype=torch.long, device=device))


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
                values = list(target)  # type: ignore[arg-type]  # no Component reaches here
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


def select(output: Any, target: Target, names: Sequence[str] = ()) -> Selection:
    """Validate ``target`` against ``output`` and return the per-sample scores it selects.

    ``output`` is the model's output: a tensor, or a tuple of tensors named ``names`` (the first is the
    classifier, which class and callable targets address). For a :class:`Component` target the
    selection's ``classes`` are the explained channels."""
    if _is_components(target):
        return select_component(output, target, names)  # type: ignore[arg-type]
    output = primary(output)
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
