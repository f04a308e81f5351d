"""One training epoch and one evaluation pass (no files, no checkpoints: see ``runner``)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import DataLoader

from xai_serve.jobs.progress import progress as progress_bar
from xai_serve.models.multi_output import primary


@dataclass
class EvalResult:
    loss: float
    accuracy: float
    targets: torch.Tensor
    predictions: torch.Tensor


def train_epoch(
    model: nn.Module,
    loader: DataLoader[tuple[torch.Tensor, int]],
    optimizer: torch.optim.Optimizer,
    device: torch.device,
    description: str,
    progress: bool,
    criterion: Any = None,
    monitor: Any = None,
) -> tuple[float, float]:
    """One pass over ``loader``; returns (mean loss, accuracy) over the epoch.

    ``criterion`` (default: cross-entropy) maps ``(outputs, targets)`` to ``(loss, per-part losses)``;
    targets may be a list of tensors (multi-output models; the first is the class). ``monitor`` (a
    :class:`~xai_serve.training.losses.LossMonitor`) sees the per-part losses of every iteration; the
    epoch ends early when it says ``stopped``, and ``best_state`` keeps the weights it calls best.
    """
    model.train()
    total_loss, correct, seen = 0.0, 0, 0
    bar = progress_bar(loader, desc=description, unit="batch", leave=False, enabled=progress)
    for x, target in bar:
        x = x.to(device)
        y = [t.to(device) for t in target] if isinstance(target, list | tuple) else target.to(device)
        classes = y[0] if isinstance(y, list) else y
        optimizer.zero_grad(set_to_none=True)
        outputs = model(x)
        if criterion is None:
            loss = F.cross_entropy(primary(outputs), classes)
            parts = [float(loss.detach())]
        else:
            loss, parts = criterion(outputs, y)
        loss.backward()
        optimizer.step()
        total_loss += float(loss.detach()) * len(classes)
        correct += int((primary(outputs).detach().argmax(1) == classes).sum())
        seen += len(classes)
        bar.set_postfix(loss=f"{total_loss / seen:.4f}", acc=f"{correct / seen:.3f}")
        if monitor is not None:
            monitor.update(parts)
            if monitor.improved:
                monitor.improved = False
                monitor.best_state = {k: v.detach().cpu().clone() for k, v in model.state_dict().items()}
            if monitor.stopped:
                break
    return total_loss / max(seen, 1), correct / max(seen, 1)


@torch.no_grad()
def evaluate(
    model: nn.Module, loader: DataLoader[tuple[torch.Tensor, int]], device: torch.device
) -> EvalResult:
    """Loss, accuracy and per-sample predictions of ``model`` (eval mode) over ``loader``."""
    model.eval()
    total_loss, targets, predictions = 0.0, [], []
    for x, y in loader:
        x, y = x.to(device), y.to(device)
        logits = primary(model(x))
        total_loss += float(F.cross_entropy(logits, y, reduction="sum"))
        targets.append(y.cpu())
        predictions.append(logits.argmax(1).cpu())
    t = torch.cat(targets) if targets else torch.zeros(0, dtype=torch.long)
    p = torch.cat(predictions) if predictions else torch.zeros(0, dtype=torch.long)
    n = max(len(t), 1)
    return EvalResult(total_loss / n, float((t == p).sum()) / n, t, p)
