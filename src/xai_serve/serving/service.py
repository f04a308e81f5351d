"""The transport-neutral explain service: decode -> predict -> explain -> encode, one batch at a time.

``ExplainService.handle(items)`` takes one item per request (an ``ExplainRequest``, or the
``XaiError`` its payload already failed with) and returns exactly one ``ExplainResponse`` per item,
in order. A bad request gets its own typed error Status; the others are answered normally; no
exception escapes. TorchServe is one caller (``handler.py``); tests and benchmarks call it directly.

Batching: all valid inputs share one prediction forward pass. Requests asking for the same methods
(with the same parameters) are explained together in one engine call with per-sample targets; if
that call fails, each of its requests is retried alone so the failure lands on the request that
caused it. Explanations run outside ``torch.inference_mode`` with gradients enabled.

Failures: a typed :class:`~xai_serve.errors.XaiError` answers its request with its code; anything else
is a bug, answered INTERNAL and logged with its traceback. A bug while reading, explaining or encoding
one request fails that request alone, never the rest of the batch nor the worker.
"""

from __future__ import annotations

import logging
import time
from collections import defaultdict
from collections.abc import Callable, Mapping, Sequence

import torch
from torch import nn
from xai_client.api.v1 import explain_pb2 as pb

from xai_serve.errors import InvalidInputError, XaiError
from xai_serve.explain import Attribution, Component, DerivedParamCache, ModelContext
from xai_serve.explain.progress import ProgressEvent, reporting
from xai_serve.models import ModelCard
from xai_serve.serving.batch import MethodKey, Row, ServedBatch, method_key, method_names, method_params
from xai_serve.serving.components import component_target, fill_outputs, split_outputs
from xai_serve.serving.credentials import ServedCredentials
from xai_serve.serving.explanation_cache import ExplanationCache, input_digest, row_of
from xai_serve.serving.heatmaps import HeatmapEncoder
from xai_serve.serving.inputs import Limits, decode_input
from xai_serve.serving.limits import CostLimits, check_deadline
from xai_serve.serving.live_monitor import LiveMonitor
from xai_serve.serving.observer import NullObserver, Observer, SafeObserver, status_label
from xai_serve.serving.ports import ExplanationEngine, RegistryEngine, UnitEvidence
from xai_serve.serving.progress_guard import deadline_guard
from xai_serve.serving.validate import validate_request

log = logging.getLogger(__name__)

DEFAULT_TOP_K = 5


class ExplainService:
    """Serves one model with an explanation ``engine`` (default: the in-process
    :class:`~xai_serve.serving.ports.RegistryEngine`) and, when the archive carries a dissection, its
    unit evidence."""

    def __init__(
        self,
        name: str,
        model: nn.Module,
        card: ModelCard,
        *,
        limits: Limits | None = None,
        observer: Observer | None = None,
        engine: ExplanationEngine | None = None,
        credentials: ServedCredentials | None = None,
        cost_limits: CostLimits | None = None,
        dissection: UnitEvidence | None = None,
        monitor: LiveMonitor | None = None,
        cache: ExplanationCache | None = None,
    ) -> None:
        self.name = name
        self.model = model.eval()
        self.card = card
        self.limits = limits or Limits()
        self.observer = SafeObserver(observer or NullObserver())
        self.engine: ExplanationEngine = engine or RegistryEngine()
        self.methods = dict(self.engine.methods())
        self.cost_limits = cost_limits or CostLimits()
        # the normalisation, and the LRP derived-parameter cache this service owns (bounded per model)
        self.context = ModelContext.of(
            card.mean, card.std, DerivedParamCache(self.cost_limits.lrp_cache_entries)
        )
        self.credentials = credentials or ServedCredentials()
        self.cache = cache or ExplanationCache("", 0)  # disabled unless given
        self._progress: Callable[[int, ProgressEvent], None] | None = None
        self.heatmaps = HeatmapEncoder(self.model, self.context, self.methods, self.credentials, dissection)
        self.monitor = monitor  # live credentials: samples answered explanations (live_monitor.py)

    # ------------------------------------------------------------------ public

    def handle(
        self,
        items: Sequence[pb.ExplainRequest | BaseException],
        progress: Callable[[int, ProgressEvent], None] | None = None,
    ) -> list[pb.ExplainResponse]:
        """One response per item, in order (see the module doc). ``progress(i, event)``: the progress of
        the iterative methods explaining request ``i`` (a streamed answer's messages)."""
        t_start = time.perf_counter()
        batch = ServedBatch.of(self.name, len(items))
        self._progress = progress
        try:
            self.observer.batch(len(items))
            self._decode(items, batch)
            self._look_up(batch)
            if not self._shared_pass(batch):
                self._predict(batch)
                self._explain_all(batch)
        except Exception as exc:  # a bug outside any one request's steps: answer everyone INTERNAL
            log.error("explain service failed", exc_info=True)
            if self.monitor is not None:
                self.monitor.discard()
            return batch.fail_all(exc)
        for i, err in batch.errors.items():  # failures before the engine ran still count per method
            if i not in batch.counted and i in batch.requests:
                for m in batch.requests[i].methods:  # unknown names are not labels (bounded cardinality)
                    label = m.name if m.name in self.methods else "unknown"
                    self.observer.explained(label, status_label(err), 0.0, 1)
        self.observer.cache(self.cache.stats)
        answers = batch.answers((time.perf_counter() - t_start) * 1e3)
        if self.monitor is not None:  # the batch's samples go to the monitor's queue once answered
            self.monitor.release()
        return answers

    # ------------------------------------------------------------------ steps

    def _decode(self, items: Sequence[pb.ExplainRequest | BaseException], batch: ServedBatch) -> None:
        for i, item in enumerate(items):
            if isinstance(item, BaseException):
                batch.errors[i] = item
                continue
            batch.responses[i].request_id = item.request_id
            batch.requests[i] = item
            t0 = time.perf_counter()
            try:
                validate_request(item, self.card, self.methods, self.credentials, self.cost_limits)
                batch.decoded[i] = decode_input(item.input, self.card, self.limits)
            except XaiError as exc:
                batch.errors[i] = exc
            except Exception as exc:  # a bug reading this request: it alone is answered INTERNAL
                log.error("reading request %d failed", i, exc_info=True)
                batch.errors[i] = exc
            batch.responses[i].timings.decode_ms = (time.perf_counter() - t0) * 1e3

    def _forward(self, members: Sequence[int]) -> Callable[[ProgressEvent], None] | None:
        """The progress events of an engine call over ``members``, to each of them (None: not asked)."""
        progress = self._progress
        if progress is None:
            return None

        def forward(event: ProgressEvent) -> None:
            for i in members:
                progress(i, event)

        return forward

    def _look_up(self, batch: ServedBatch) -> None:
        """The cache keys of every decoded request's methods; a request whose every method hits is
        answered from the cache (``batch.cached``) once its prediction is made."""
        if not self.cache.enabled:
            return
        for i in batch.decoded_requests():
            req = batch.requests[i]
            if not req.methods:
                continue
            try:
                digest = input_digest(batch.decoded[i].x)
                keys = {
                    m.name: self.cache.key(self.methods[m.name], m.params, req.target, digest)
                    for m in req.methods
                }
            except XaiError:  # a bad parameter: not a cache question (the engine answers it)
                continue
            batch.cache_keys[i] = keys
            hits = {name: self.cache.get(key) for name, key in keys.items()}
            if all(rows is not None for rows in hits.values()):
                batch.cached[i] = {name: rows for name, rows in hits.items() if rows is not None}

    def _answer_cached(self, i: int, batch: ServedBatch) -> None:
        """Request ``i``'s heatmaps from the cache, in the computed order (targets, then methods)."""
        req, resp = batch.requests[i], batch.responses[i]
        hits = batch.cached[i]
        names = [m.name for m in req.methods]
        for j in range(len(hits[names[0]])):
            for name in names:
                target, attribution = hits[name][j]
                self.heatmaps.add(resp, req, name, target, attribution, 0, batch.decoded[i])
        resp.timings.cached = True
        for name in names:
            self.observer.explained(name, "ok", 0.0, 1)
        batch.counted.add(i)

    def _store(
        self, rows: list[Row], names: list[str], results: Mapping[str, Attribution], batch: ServedBatch
    ) -> None:
        """Put the computed rows of every request answered without error into the cache."""
        for i in {r.request for r in rows}:
            keys = batch.cache_keys.get(i)
            if not keys or i in batch.errors:
                continue
            for name in names:
                if type(results[name]) is not Attribution:  # a subclass's evidence (filters) a row would lose
                    continue
                mine = [(r.target, row_of(results[name], j)) for j, r in enumerate(rows) if r.request == i]
                self.cache.put(keys.get(name), mine)

    def _predict(self, batch: ServedBatch) -> None:
        idx = batch.decoded_requests()
        if not idx:
            return
        t0 = time.perf_counter()
        x = batch.inputs(idx)
        try:
            with torch.inference_mode():
                logits, maps = split_outputs(self.model(x), self.card)  # several outputs: y first
                logits = logits.float()
        except (RuntimeError, ValueError) as exc:  # torch's errors, e.g. a shape the model cannot take
            for i in idx:
                batch.errors[i] = InvalidInputError(f"the model could not run on this input: {exc}")
            return
        self._fill_predictions(batch, idx, logits, (time.perf_counter() - t0) * 1e3)
        for row, i in enumerate(idx):  # the predicted yg/ys maps of a multi-output model
            fill_outputs(batch.responses[i].prediction, maps, row)

    def _fill_predictions(self, batch: ServedBatch, idx: list[int], logits: torch.Tensor, ms: float) -> None:
        probs = torch.softmax(logits, dim=1)
        labels = self.card.labels
        for row, i in enumerate(idx):
            batch.logits[i] = logits[row].clone()
            k = min(batch.requests[i].top_k or DEFAULT_TOP_K, self.card.num_classes)
            p, c = probs[row].topk(k)
            for pi, ci in zip(p.tolist(), c.tolist(), strict=True):
                batch.responses[i].prediction.top.add(
                    index=ci,
                    label=labels[ci] if ci < len(labels) else str(ci),
                    probability=pi,
                    logit=float(logits[row, ci]),
                )
            batch.responses[i].timings.predict_ms = ms

    def _shared_pass(self, batch: ServedBatch) -> bool:
        """Predict and explain with ONE forward pass when the batch allows it; False: nothing done.

        Allowed when every valid request asks for the same methods, all running the model's forward
        pass once and reporting its logits (``ExplanationEngine.prediction_pass``: the gradient family
        and LRP, whose forward is the model's with BatchNorm merged: the same logits up to float
        rounding), and the targets are all "predicted" (or top 1) or all class indices. Any failure
        returns False and the two-pass path (prediction, then explanation with per-request retries)
        answers the batch.
        """
        idx = batch.decoded_requests()
        # multi-output: Prediction.outputs needs the full forward; cache hits: answered after _predict
        if not idx or self.card.outputs or batch.cached:
            return False
        reqs = [batch.requests[i] for i in idx]
        key = method_key(reqs[0])
        if (
            not key
            or any(method_key(r) != key for r in reqs)
            or not self.engine.prediction_pass(method_names(key))
        ):
            return False
        target = _shared_target(reqs)
        if target is None:
            return False
        try:
            for r in reqs:
                check_deadline(r.deadline_unix_s)
            t0 = time.perf_counter()
            x = batch.inputs(idx).detach().clone()
            guard = deadline_guard([r.deadline_unix_s for r in reqs], self._forward(idx))
            with torch.inference_mode(False), torch.enable_grad(), reporting(guard):
                results = self.engine.explain(self.model, x, method_params(key), target, self.context)
            seconds = time.perf_counter() - t0
        except XaiError:  # a bad request among them: the two-pass path finds it and answers it
            return False
        except Exception:  # a bug: the two-pass path retries request by request and fails only its cause
            log.warning("the shared forward pass failed; answering request by request", exc_info=True)
            return False
        first = results[key[0][0]]
        logits, classes = first.logits, first.classes
        if logits is None or classes is None or logits.shape != (len(idx), self.card.num_classes):
            return False  # no prediction to take from this pass: the two-pass path answers
        if len(classes) != len(idx):
            return False
        self._fill_predictions(batch, idx, logits.detach().float(), 0.0)
        rows = [Row(i, int(c)) for i, c in zip(idx, classes, strict=True)]
        self._finish_group(key, rows, results, seconds, batch)
        return True

    def _targets(self, req: pb.ExplainRequest, logits: torch.Tensor) -> list[int | Component]:
        kind = req.target.WhichOneof("kind")
        if kind == "component":
            return [component_target(req.target.component, self.card)]
        if kind == "class_index":
            return [int(req.target.class_index)]
        if kind == "top_k":
            return [int(c) for c in logits.topk(req.target.top_k).indices.tolist()]
        if kind == "classes":
            return [int(c) for c in req.target.classes.indices]
        return [int(logits.argmax())]

    def _explain_all(self, batch: ServedBatch) -> None:
        groups: dict[MethodKey, list[Row]] = defaultdict(list)
        for i in sorted(batch.logits):
            req = batch.requests[i]
            if i in batch.cached and i not in batch.errors:
                try:
                    self._answer_cached(i, batch)
                except XaiError as exc:
                    batch.errors[i] = exc
                continue
            if req.methods and i not in batch.errors:
                try:  # the deadline may have passed while earlier requests were served
                    check_deadline(req.deadline_unix_s)
                except XaiError as exc:
                    batch.errors[i] = exc
                    continue
                for t in self._targets(req, batch.logits[i]):
                    groups[method_key(req)].append(Row(i, t))
        for key, rows in groups.items():
            self._explain_group(key, rows, batch)

    def _explain_group(self, key: MethodKey, rows: list[Row], batch: ServedBatch) -> None:
        t0 = time.perf_counter()
        try:
            x = batch.inputs([r.request for r in rows]).detach().clone()
            targets = [r.target for r in rows]
            members = sorted({r.request for r in rows})
            guard = deadline_guard(
                [batch.requests[i].deadline_unix_s for i in members], self._forward(members)
            )
            with torch.inference_mode(False), torch.enable_grad(), reporting(guard):
                results = self.engine.explain(self.model, x, method_params(key), targets, self.context)
        except XaiError as exc:  # a bad request among the rows (its target, its parameters...)
            self._group_failed(key, rows, exc, time.perf_counter() - t0, batch, bug=False)
            return
        except Exception as exc:  # a bug: isolated to the request that causes it, then logged
            self._group_failed(key, rows, exc, time.perf_counter() - t0, batch, bug=True)
            return
        self._finish_group(key, rows, results, time.perf_counter() - t0, batch)

    def _group_failed(
        self,
        key: MethodKey,
        rows: list[Row],
        exc: Exception,
        seconds: float,
        batch: ServedBatch,
        *,
        bug: bool,
    ) -> None:
        """Retry each request of a failed group alone; a lone request takes the failure as its answer
        (``bug``: not a typed XaiError; logged with its traceback, answered INTERNAL)."""
        members = sorted({r.request for r in rows})
        if len(members) > 1:  # find the request that caused it
            for i in members:
                self._explain_group(key, [r for r in rows if r.request == i], batch)
            return
        if bug:
            log.error("explaining request %d failed (a bug)", members[0], exc_info=exc)
        for name in method_names(key):
            self.observer.explained(name, status_label(exc), seconds, 1)
        batch.errors[members[0]] = exc
        batch.counted.add(members[0])

    def _finish_group(
        self,
        key: MethodKey,
        rows: list[Row],
        results: Mapping[str, Attribution],
        seconds: float,
        batch: ServedBatch,
    ) -> None:
        """Report and encode the results of one engine call over ``rows``."""
        names = method_names(key)
        members = {r.request for r in rows}
        for name in names:
            self.observer.explained(name, "ok", seconds / max(len(names), 1), len(members))
        batch.counted.update(members)
        t1 = time.perf_counter()
        for j, row in enumerate(rows):
            req, resp = batch.requests[row.request], batch.responses[row.request]
            resp.timings.explain_ms = seconds * 1e3
            for name in names:
                if row.request in batch.errors:
                    break
                try:
                    self.heatmaps.add(
                        resp, req, name, row.target, results[name], j, batch.decoded[row.request]
                    )
                    if self.monitor is not None:
                        d = batch.decoded[row.request]
                        params = dict(key)[name]
                        self.monitor.consider(
                            name, dict(params), row.target, d.x, d.pixels, results[name].heatmap[j]
                        )
                except XaiError as exc:  # e.g. NonFiniteResultError: never serve a NaN
                    batch.errors[row.request] = exc
                except Exception as exc:  # a bug encoding this request: it alone is answered INTERNAL
                    log.error("encoding request %d failed (a bug)", row.request, exc_info=True)
                    batch.errors[row.request] = exc
        encode_ms = (time.perf_counter() - t1) * 1e3 / max(len(rows), 1)
        for i in members:
            batch.responses[i].timings.encode_ms += encode_ms
        if self.cache.enabled:
            self._store(rows, names, results, batch)


def _shared_target(reqs: list[pb.ExplainRequest]) -> str | list[int] | None:
    """The one engine target of a shared pass: "predicted" when every request explains its top class,
    per-sample class indices when every request names one; None otherwise (not shareable)."""
    kinds = [r.target.WhichOneof("kind") for r in reqs]
    if all(
        k in (None, "predicted") or (k == "top_k" and r.target.top_k == 1)
        for k, r in zip(kinds, reqs, strict=True)
    ):
        return "predicted"
    if all(k == "class_index" for k in kinds):
        return [int(r.target.class_index) for r in reqs]
    return None
