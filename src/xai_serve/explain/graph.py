"""Discovering a model's layer graph with one probe forward pass (cached per model and input shape).

The probe runs the (canonised) model on one sample with forward hooks on every leaf module and
records the call order and which tensor each call consumed. From that it derives

* the execution order of the leaf modules (the "first layer" of a composite is the first linear layer
  *executed*, not the first registered);
* BatchNorm merges: a BatchNorm whose input is exactly the output of a conv/linear call, where both are
  called once and the conv output feeds nothing else (seen by a module), is merged into it;
* modules called more than once.

Functional tensor operations between modules (``out += identity``) are invisible to hooks; the
canonisers make the known ones explicit and the LRP conservation figure reports the rest.
"""

from __future__ import annotations

import weakref
from collections import Counter
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

LINEAR_TYPES = (nn.Linear, nn.Conv1d, nn.Conv2d, nn.ConvTranspose2d)
CONV_TYPES = (nn.Conv1d, nn.Conv2d, nn.ConvTranspose2d)  # Zennit's ``Convolution`` (composites' conv layers)
BATCHNORM_TYPES = (nn.BatchNorm1d, nn.BatchNorm2d)


@dataclass(frozen=True)
class ModelGraph:
    order: tuple[str, ...]  # leaf modules (and hidden Sums) in first-call order
    calls: dict[str, int]  # name -> number of calls
    merges: dict[str, str]  # batch-norm name -> linear/conv name it merges into


_CACHE: weakref.WeakKeyDictionary[nn.Module, dict[Any, ModelGraph]] = weakref.WeakKeyDictionary()


def _leaves(model: nn.Module, extra: dict[str, nn.Module]) -> dict[str, nn.Module]:
    out = {name: m for name, m in model.named_modules() if not any(True for _ in m.children())}
    out.update(extra)
    return out


def analyse(model: nn.Module, x: torch.Tensor, extra: dict[str, nn.Module]) -> ModelGraph:
    """The graph of ``model`` (already canonised; ``extra`` = hidden modules such as residual Sums)."""
    leaves = _leaves(model, extra)
    key = (
        tuple(x.shape[1:]),
        x.dtype,
        tuple((n, id(m)) for n, m in leaves.items() if n not in extra),
        tuple(sorted(extra)),
    )
    per_model = _CACHE.setdefault(model, {})
    if key in per_model:
        return per_model[key]
    records: list[tuple[str, list[int], int]] = []
    keep: list[Any] = []
    handles = []

    def hook_for(name: str) -> Any:
        def hook(module: nn.Module, inputs: Any, output: Any) -> None:
            ins = [id(t) for t in inputs if isinstance(t, torch.Tensor)]
            records.append((name, ins, id(output)))
            keep.append((inputs, output))

        return hook

    try:
        for name, module in leaves.items():
            handles.append(module.register_forward_hook(hook_for(name)))
        with torch.no_grad():
            model(x[:1].detach())
    finally:
        for handle in handles:
            handle.remove()
    calls = Counter(name for name, _, _ in records)
    order = tuple(dict.fromkeys(name for name, _, _ in records))
    producer = {out: name for name, _, out in records}
    consumers = Counter(i for _, ins, _ in records for i in ins)
    merges: dict[str, str] = {}
    for name, ins, _ in records:
        if not isinstance(leaves[name], BATCHNORM_TYPES) or calls[name] != 1 or len(ins) != 1:
            continue
        source = producer.get(ins[0])
        if source is None or not isinstance(leaves[source], LINEAR_TYPES):
            continue
        if calls[source] == 1 and consumers[ins[0]] == 1:
            merges[name] = source
    graph = ModelGraph(order=order, calls=dict(calls), merges=merges)
    per_model[key] = graph
    return graph
