"""One training epoch and one evaluation pass (no files, no checkpoints: see ``runner``)."""

from __future__ import annotations

import sys
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import DataLoader
from tqdm import tqdm


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
) -> tuple[float, float]:
    """One pass over ``loader``; returns (mean cross-entropy, accuracy) over the epoch."""
    model.train()
    total_loss, correct, seen = 0.0, 0, 0
    bar = tqdm(loader, desc=description, file=sys.stderr, leave=False, disable=not progress, unit="batch")
    for x, y in bar:
        x, y = x.to(device), y.to(device)
        optimizer.zero_grad(set_to_none=True)
        logits = model(x)
        loss = F.cross_entropy(logits, y)
        loss.backward()
        optimizer.step()
        total_loss += float(loss.detach()) * len(y)
        correct += int((logits.detach().argmax(1) == y).sum())
        seen += len(y)
        bar.set_postfix(loss=f"{total_loss / seen:.4f}", acc=f"{correct / seen:.3f}")
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
        logits = model(x)
        total_loss += float(F.cross_entropy(logits, y, reduction="sum"))
        targets.append(y.cpu())
        predictions.append(logits.argmax(1).cpu())
    t = torch.cat(targets) if targets else torch.zeros(0, dtype=torch.long)
    p = torch.cat(predictions) if predictions else torch.zeros(0, dtype=torch.long)
    n = max(len(t), 1)
    return EvalResult(total_loss / n, float((t == p).sum()) / n, t, p)
