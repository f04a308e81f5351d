"""Methods that evaluate the model on many rows derived from each sample (integrated gradients' path
points, SmoothGrad's noisy copies, occlusion's occluded copies): the target resolved once on the
original batch, then carried to every derived row, and the rows run in chunks of a bounded size.

:func:`resolve` runs the model once on ``x`` and fixes each sample's target (``"predicted"`` is the
class predicted for the *original* sample, as Captum reads a target, never the class of a noisy or
scaled copy; a component's ``"predicted"`` channel likewise). :class:`Resolved.rows` gives the target of
rows that repeat samples. :func:`input_gradients` and :func:`target_scores` evaluate derived rows chunk
by chunk (``chunk`` rows per forward pass) and report each finished chunk to an optional progress
callback (:data:`Progress`), which may raise to stop the work (a cancelled request).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, replace

import torch
from torch import nn

from xai_serve.explain.backprop import BackpropRequest, run_backprop
from xai_serve.explain.passes import ReluMode
from xai_serve.explain.patching import gradient_context, prepare_input
from xai_serve.explain.progress import report
from xai_serve.explain.targets import Component, Target, select
from xai_serve.models.multi_output import output_names, primary

#: ``progress(done, total)``: called after each chunk of derived rows; raising stops the method
Progress = Callable[[int, int], None]


def progress_of(method: str, own: Progress | None) -> Progress:
    """The method's progress: to its own callback, if any, and to the enclosing
    :func:`~xai_serve.explain.progress.reporting` scope."""

    def progress(done: int, total: int) -> None:
        if own is not None:
            own(done, total)
        report(method, done, total)

    return progress


@dataclass
class Resolved:
    """The targets of a batch fixed on its original samples: ``logits`` (B, K) and ``scores`` (B,)
    of the original forward pass (detached), ``classes`` the explained class (or channel) per sample
    (None for a callable target), ``per_sample`` the fixed target per sample (None: a callable, which
    applies row-wise to the derived rows)."""

    logits: torch.Tensor
    scores: torch.Tensor
    classes: list[int] | None
    per_sample: list[int | Component] | None
    target: Target

    def rows(self, index: Sequence[int]) -> Target:
        """The target of derived rows whose samples are ``index`` (one entry per row)."""
        if self.per_sample is None:
            return self.target
        return [self.per_sample[i] for i in index]


def resolve(model: nn.Module, x: torch.Tensor, target: Target) -> Resolved:
    """Run ``model`` on ``x`` once and fix each sample's target (see the module doc)."""
    with gradient_context():
        xin = prepare_input(x)
        output = model(xin)
        selection = select(output, target, output_names(model))
    classes = None if selection.classes is None else [int(c) for c in selection.classes]
    per_sample: list[int | Component] | None = None
    if classes is not None:
        batch = len(classes)
        items: list[object] = (
            [target] * batch if isinstance(target, Component | str | int) else list(target)  # type: ignore[arg-type]
        )
        if isinstance(target, torch.Tensor):
            items = [int(c) for c in classes]
        per_sample = [
            replace(item, channel=c) if isinstance(item, Component) else c
            for item, c in zip(items, classes, strict=True)
        ]
    return Resolved(
        logits=primary(output).detach(),
        scores=selection.scores.detach(),
        classes=classes,
        per_sample=per_sample,
        target=target,
    )


def chunks(total: int, size: int) -> Iterator[slice]:
    """Consecutive slices of ``range(total)`` of at most ``size`` rows."""
    for start in range(0, total, max(1, size)):
        yield slice(start, min(total, start + max(1, size)))


def input_gradients(
    model: nn.Module,
    rows: torch.Tensor,
    samples: Sequence[int],
    resolved: Resolved,
    chunk: int,
    progress: Progress | None = None,
) -> torch.Tensor:
    """The plain gradient of each row's target score with respect to that row (rows shaped like the
    input; ``samples[r]``: the sample row ``r`` derives from), ``chunk`` rows per pass."""
    out = torch.empty_like(rows)
    for part in chunks(rows.shape[0], chunk):
        result = run_backprop(
            model, rows[part], resolved.rows(samples[part]), BackpropRequest(modes={ReluMode.PLAIN})
        )
        out[part] = result.input_grads[ReluMode.PLAIN]
        if progress is not None:
            progress(part.stop, rows.shape[0])
    return out


def target_scores(
    model: nn.Module,
    rows: torch.Tensor,
    samples: Sequence[int],
    resolved: Resolved,
    chunk: int,
    progress: Progress | None = None,
) -> torch.Tensor:
    """Each row's target score (forward passes only), ``chunk`` rows per pass; (R,) detached."""
    out = torch.empty(rows.shape[0], dtype=resolved.scores.dtype, device=rows.device)
    for part in chunks(rows.shape[0], chunk):
        with gradient_context():
            xin = prepare_input(rows[part])
            output = model(xin)
            out[part] = select(output, resolved.rows(samples[part]), output_names(model)).scores.detach()
        if progress is not None:
            progress(part.stop, rows.shape[0])
    return out
