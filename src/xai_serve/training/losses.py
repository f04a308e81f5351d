"""Training losses (the recipe's ``[loss]`` section) and the General Pattern Theory code's per-iteration loss
monitor.

* ``cross_entropy``: CE of the (only, or first) output against the class.
* ``gpt`` (docs/methods.md#gpt-training): ``w0*CE(y, y0) + w1*CE_w(yg, yg0) + w2*CE_w(ys, ys0)``, the
  pixel CEs over (B, C, 28, 28) maps with class weights ``[background_weight, 1, ..., 1]`` (the original
  General Pattern Theory training: 0.01; the fine-tunings: 1, i.e. unweighted). Targets come from the
  dataset's component view ``(y, yg, ys)``.

:class:`LossMonitor` ports the original code's stopping and keep-the-best rules: stop once the three losses
(their running mean over ``stop_window`` iterations; 1 = the latest iteration) are all below
``stop_below``; with ``keep_best="running_loss"`` an iteration is "best" when the running y loss is
below its threshold and the running yg/ys losses are <= the best so far, which then becomes
``max(current, discount * best)`` (NSCC_NICE2). Ported as written: the best starts at infinity and
``max(current, 0.95 * inf)`` stays infinite, so in effect (seed and port alike) every iteration whose
running y loss is below its threshold is "best", and the last such one is kept.
"""

from __future__ import annotations

from collections import deque
from typing import Any

import torch
import torch.nn.functional as F

from xai_serve.models.multi_output import primary
from xai_serve.training.recipe import LossSection

PARTS = ("y", "yg", "ys")


class Criterion:
    """``criterion(outputs, targets) -> (total loss, [per-part losses])``."""

    #: whether the targets are the dataset's component view (y, yg, ys) instead of the class
    components = False

    def __call__(self, outputs: Any, targets: Any) -> tuple[torch.Tensor, list[float]]:
        loss = F.cross_entropy(primary(outputs), targets)
        return loss, [float(loss.detach())]


class GptCriterion(Criterion):
    components = True

    def __init__(self, section: LossSection) -> None:
        self.weights = list(section.weights)
        self.background = section.background_weight
        self._class_weights: dict[tuple[int, torch.device], torch.Tensor | None] = {}

    def _w(self, channels: int, device: torch.device) -> torch.Tensor | None:
        if self.background == 1.0:
            return None
        key = (channels, device)
        if key not in self._class_weights:
            w = torch.ones(channels, device=device)
            w[0] = self.background
            self._class_weights[key] = w
        return self._class_weights[key]

    def __call__(self, outputs: Any, targets: Any) -> tuple[torch.Tensor, list[float]]:
        if not isinstance(outputs, tuple | list) or len(outputs) != 3:
            raise TypeError("the gpt loss needs a model with three outputs (y, yg, ys)")
        y, yg, ys = outputs
        y0, yg0, ys0 = targets
        parts = [
            F.cross_entropy(y, y0),
            F.cross_entropy(yg, yg0, weight=self._w(yg.shape[1], yg.device)),
            F.cross_entropy(ys, ys0, weight=self._w(ys.shape[1], ys.device)),
        ]
        total = sum(w * p for w, p in zip(self.weights, parts, strict=True))
        return total, [float(p.detach()) for p in parts]  # type: ignore[return-value]


def make_criterion(section: LossSection) -> Criterion:
    return GptCriterion(section) if section.name == "gpt" else Criterion()


class LossMonitor:
    """Running means of the per-part losses; says when to stop and when an iteration is the best."""

    def __init__(self, section: LossSection) -> None:
        self.stop_below = list(section.stop_below)
        self.window: deque[list[float]] = deque(maxlen=section.stop_window)
        self.keep_running = section.keep_best == "running_loss"
        self.discount = section.best_discount
        self.best = [float("inf"), float("inf")]
        self.stopped = False
        self.improved = False
        self.best_state: dict[str, torch.Tensor] | None = None
        self.parts: list[list[float]] = []  # per-iteration losses (for the history and the report)

    def running(self) -> list[float]:
        n = len(self.window)
        return [sum(v[i] for v in self.window) / n for i in range(len(self.window[0]))]

    def update(self, parts: list[float]) -> None:
        self.parts.append(list(parts))
        self.window.append(parts)
        mean = self.running()
        if self.stop_below and len(self.window) == self.window.maxlen:
            self.stopped = all(m < t for m, t in zip(mean, self.stop_below, strict=False))
        if self.keep_running and len(mean) == 3:
            y_ok = not self.stop_below or mean[0] < self.stop_below[0]
            if y_ok and mean[1] <= self.best[0] and mean[2] <= self.best[1]:
                self.best = [
                    max(mean[1], self.discount * self.best[0]),
                    max(mean[2], self.discount * self.best[1]),
                ]
                self.improved = True
