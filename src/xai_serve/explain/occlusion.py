"""Occlusion (Zeiler & Fergus, "Visualizing and Understanding Convolutional Networks", ECCV 2014),
method ``occlusion``.

A ``window`` x ``window`` square over all channels at once slides over the image with step ``stride``;
each position replaces the pixels under it by ``baseline`` (a value in the model's input space) and
records the drop of the target score ``f_t(x) - f_t(x_occluded)`` on every pixel it covers. A pixel's
attribution is the mean drop over the windows covering it. Window positions per axis:
``0, s, 2s, ...``, ``ceil((H - w) / s) + 1`` of them, the last cropped at the border: Captum's
``Occlusion`` with ``sliding_window_shapes=(C, w, w)``, ``strides=(C, s, s)``, ``baselines=baseline``.
``stride`` may not exceed ``window`` (a pixel between two windows would have no value). Forward
passes only; the occluded copies run ``internal_batch`` per forward pass. The target is fixed on the
unoccluded input.
"""

from __future__ import annotations

import math

import torch

from xai_serve.errors import InvalidParameterError
from xai_serve.explain.expanded import Progress, chunks, progress_of, resolve, target_scores
from xai_serve.explain.params import ParamSpec
from xai_serve.explain.patching import gradient_context
from xai_serve.explain.registry import Attribution, Explainer, register_method
from xai_serve.explain.targets import Target


def window_starts(size: int, window: int, stride: int) -> list[int]:
    """The window positions along an axis of ``size`` pixels (see the module doc)."""
    return [i * stride for i in range(math.ceil((size - window) / stride) + 1)]


def window_count(shape: tuple[int, ...], window: int, stride: int) -> int:
    """How many windows cover an input of ``shape`` (C, H, W); 0 when the window does not fit."""
    if len(shape) != 3 or window > min(shape[1:]):
        return 0
    return len(window_starts(shape[1], window, stride)) * len(window_starts(shape[2], window, stride))


def _work(params: dict[str, object], input_shape: tuple[int, ...] | None) -> float:
    """Forward passes per row, as forward+backward passes (a forward is about a third of one)."""
    window, stride = int(params["window"]), int(params["stride"])  # type: ignore[call-overload]
    if input_shape is None:
        return 1.0
    return max(1, window_count(tuple(input_shape), window, stride)) / 3


@register_method(
    "occlusion",
    params={
        "window": ParamSpec("int", 8, "side of the square window in pixels (all channels)", minimum=1),
        "stride": ParamSpec("int", 4, "step of the window in pixels (at most the window)", minimum=1),
        "baseline": ParamSpec("float", 0.0, "value of the occluded pixels (model input space)"),
        "internal_batch": ParamSpec("int", 64, "occluded copies per forward pass (memory bound)", minimum=1),
    },
    signed=True,
    test_params={"window": 4, "stride": 4},
    demo_params={"window": 4, "stride": 2},
    cost=_work,
)
class Occlusion(Explainer):
    """The drop of the target score when a sliding square (all channels) is replaced by a baseline
    value, averaged per pixel over the windows covering it (Zeiler & Fergus 2014)."""

    #: ``progress(done, total)`` after each chunk of occluded copies (``total`` = windows x batch)
    progress: Progress | None = None

    def masks(self, x: torch.Tensor) -> torch.Tensor:
        """The (N, 1, H, W) window masks (1 under the window) for input ``x`` (B, C, H, W)."""
        if x.ndim != 4:
            raise InvalidParameterError(f"occlusion needs (B, C, H, W) inputs, got {tuple(x.shape)}")
        window, stride = self.params["window"], self.params["stride"]
        height, width = x.shape[2:]
        if window > min(height, width):
            raise InvalidParameterError(
                f"parameter 'window': {window} is larger than the {height}x{width} input"
            )
        if stride > window:
            raise InvalidParameterError(f"parameter 'stride': {stride} is larger than the window {window}")
        out = []
        for top in window_starts(height, window, stride):
            for left in window_starts(width, window, stride):
                mask = torch.zeros(1, height, width, dtype=x.dtype, device=x.device)
                mask[:, top : top + window, left : left + window] = 1
                out.append(mask)
        return torch.stack(out)

    def attribute(self, x: torch.Tensor, target: Target = "predicted") -> Attribution:
        with gradient_context():  # also under the caller's inference_mode
            return self._attribute(x, target)

    def _attribute(self, x: torch.Tensor, target: Target = "predicted") -> Attribution:
        masks = self.masks(x)
        resolved = resolve(self.model, x, target)
        x = x.detach()
        batch, n = x.shape[0], masks.shape[0]
        samples = [b for b in range(batch) for _ in range(n)]
        progress = progress_of(self.spec.name, self.progress)
        scores = torch.empty(batch * n, dtype=resolved.scores.dtype, device=x.device)
        for part in chunks(batch * n, self.params["internal_batch"]):  # occluded copies built per chunk
            index = torch.arange(part.start, part.stop, device=x.device)
            mask = masks[index % n]
            rows = x[index // n] * (1 - mask) + self.params["baseline"] * mask
            scores[part] = target_scores(self.model, rows, samples[part], resolved, rows.shape[0])
            progress(part.stop, batch * n)
        drops = (resolved.scores[:, None] - scores.view(batch, n)).to(x.dtype)  # (B, N)
        total = torch.einsum("bn,nchw->bchw", drops, masks)
        heat = (total / masks.sum(dim=0)).expand_as(x).contiguous()
        return Attribution(
            heatmap=heat,
            logits=resolved.logits,
            classes=resolved.classes,
            stats={"target_score": resolved.scores.tolist()},
        )
