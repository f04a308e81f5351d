"""The typed ports of :class:`~xai_serve.serving.service.ExplainService`: what it needs of the
explanation engine and of unit evidence, and the production engine.

* :class:`ExplanationEngine`: the methods served, whether a set of methods reports the prediction of
  its own forward pass, and one explanation call returning an
  :class:`~xai_serve.explain.registry.Attribution` per method (a subclass for a method with more to
  say, e.g. the ``decomposed`` method's filter evidence).
* :class:`RegistryEngine`: the production engine, in process: the method registry and
  :func:`~xai_serve.explain.explain_detailed`. A test that injects faults wraps it and keeps its
  answers (see ``tests/unit/serving``); the service treats every engine alike.
* :class:`UnitEvidence`: concept-labelled units of one layer for a heatmap (``Heatmap.units``), the
  NetDissect / compositional-explanations result (Mu & Andreas 2020) an archive may carry;
  :class:`xai_serve.dissection.evidence.Dissection` provides it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Protocol

import torch
from torch import nn
from xai_client.api.v1 import explain_pb2 as pb

from xai_serve.explain import (
    Attribution,
    MethodSpec,
    ModelContext,
    Target,
    explain_detailed,
    explain_targets,
    list_methods,
)
from xai_serve.explain.registry import method_class
from xai_serve.serving.target_runs import target_runs

# method name -> its request parameters as sent on the wire (values are text)
MethodParams = Mapping[str, Mapping[str, str]]


class ExplanationEngine(Protocol):
    """What the service needs of an explanation engine."""

    def methods(self) -> Mapping[str, MethodSpec]:
        """Every method served, by name."""
        ...

    def prediction_pass(self, names: Sequence[str]) -> bool:
        """Whether explaining with all of ``names`` runs the model's forward pass once on the batch and
        reports its logits and explained classes (``Attribution.logits`` / ``classes``), so that the
        service can take the prediction from that pass instead of a second one."""
        ...

    def explain(
        self, model: nn.Module, x: torch.Tensor, methods: MethodParams, target: Target, context: ModelContext
    ) -> Mapping[str, Attribution]:
        """One call over batch ``x``: method name -> its result (typed ``XaiError`` for a bad request)."""
        ...


class RegistryEngine:
    """The production engine: :func:`~xai_serve.explain.list_methods` and
    :func:`~xai_serve.explain.explain_detailed`, in process."""

    def methods(self) -> Mapping[str, MethodSpec]:
        return list_methods()

    def prediction_pass(self, names: Sequence[str]) -> bool:
        return all(method_class(name).prediction_pass for name in names)

    def explain(
        self, model: nn.Module, x: torch.Tensor, methods: MethodParams, target: Target, context: ModelContext
    ) -> Mapping[str, Attribution]:
        runs = target_runs(x, target)  # topK rows: one forward pass for the K targets of an input
        if runs is not None:
            return explain_targets(model, runs[0], methods, runs[1], context=context)
        return explain_detailed(model, x, methods, target, context=context)


class UnitEvidence(Protocol):
    """Adds the units that contribute most to one explanation to its wire heatmap (``Heatmap.units``)."""

    def fill(
        self,
        h: pb.Heatmap,
        req: pb.ExplainRequest,
        model: nn.Module,
        x: torch.Tensor,
        target: int,
        method: str,
        result: Attribution,
        j: int,
        *,
        context: ModelContext,
    ) -> None:
        """``h``: the heatmap of method ``method`` for class ``target`` of sample ``x`` [C,H,W], request
        ``req``; ``result``: the engine's result for the batch, ``j`` the sample's row in it; ``context``:
        the model's context (normalisation, the service's LRP parameter cache)."""
        ...
