"""The transport-neutral explain service: decode -> predict -> explain -> encode, one batch at a time.

``ExplainService.handle(items)`` takes one item per request (an ``ExplainRequest``, or the
``XaiError`` its payload already failed with) and returns exactly one ``ExplainResponse`` per item,
in order. A bad request gets its own typed error Status; the others are answered normally; no
exception escapes. TorchServe is one caller (``handler.py``); tests and benchmarks call it directly.

Batching: all valid inputs share one prediction forward pass. Requests asking for the same methods
(with the same parameters) are explained together in one engine call with per-sample targets; if
that call fails, each of its requests is retried alone so the failure lands on the request that
caused it. Explanations run outside ``torch.inference_mode`` with gradients enabled.
"""

from __future__ import annotations

import logging
import math
import time
import traceback
from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

import torch
from torch import nn
from xai_client.api.v1 import explain_pb2 as pb
from xai_client.overlay import overlay_png
from xai_client.values import encode_values

from xai_serve.errors import InvalidInputError, NonFiniteResultError, UnknownMethodError, XaiError
from xai_serve.models import ModelCard
from xai_serve.serving.components import (
    Component,
    component_target,
    echo_component,
    fill_outputs,
    split_outputs,
)
from xai_serve.serving.credentials import ServedCredentials
from xai_serve.serving.decode import DecodedInput, Limits, decode_input, validate_target
from xai_serve.serving.evidence import encode_filters
from xai_serve.serving.limits import CostLimits, check_deadline

log = logging.getLogger(__name__)

DEFAULT_TOP_K = 5
MethodKey = tuple[tuple[str, tuple[tuple[str, str], ...]], ...]


class Observer(Protocol):
    """Receives what the metrics need (see ``metrics.py``)."""

    def explained(self, method: str, status: str, seconds: float, count: int) -> None: ...
    def batch(self, size: int) -> None: ...


class SafeObserver:
    """Wraps an observer so a failing metrics call never fails a request."""

    def __init__(self, inner: Observer) -> None:
        self._inner = inner

    def explained(self, method: str, status: str, seconds: float, count: int) -> None:
        try:
            self._inner.explained(method, status, seconds, count)
        except Exception:
            log.warning("observer failed: %s", traceback.format_exc())

    def batch(self, size: int) -> None:
        try:
            self._inner.batch(size)
        except Exception:
            log.warning("observer failed: %s", traceback.format_exc())


class NullObserver:
    def explained(self, method: str, status: str, seconds: float, count: int) -> None:
        pass

    def batch(self, size: int) -> None:
        pass


def status_of(exc: BaseException) -> pb.Status:
    """The wire Status of an exception: XaiError keeps its code; anything else is INTERNAL."""
    if isinstance(exc, XaiError):
        code = exc.code if exc.code in pb.Code.keys() else "INTERNAL"  # noqa: SIM118 (enum wrapper)
        return pb.Status(code=pb.Code.Value(code), message=str(exc), reason=type(exc).__name__)
    return pb.Status(
        code=pb.INTERNAL, message=f"internal error: {type(exc).__name__}: {exc}", reason=type(exc).__name__
    )


def _engine() -> tuple[Callable[[], dict[str, Any]], Callable[..., dict[str, Any]]]:
    from xai_serve.explain import explain_detailed, list_methods

    return list_methods, explain_detailed


@dataclass
class _Row:
    """One (request, target class or component) pair to explain."""

    request: int
    target: int | Component


@dataclass
class _State:
    decoded: dict[int, DecodedInput] = field(default_factory=dict)
    logits: dict[int, torch.Tensor] = field(default_factory=dict)
    errors: dict[int, BaseException] = field(default_factory=dict)
    counted: set[int] = field(default_factory=set)  # requests already reported to the observer


class ExplainService:
    """Serves one model. ``explain_fn``/``methods_fn`` default to the engine (injectable for tests)."""

    def __init__(
        self,
        name: str,
        model: nn.Module,
        card: ModelCard,
        *,
        limits: Limits | None = None,
        observer: Observer | None = None,
        methods_fn: Callable[[], dict[str, Any]] | None = None,
        explain_fn: Callable[..., dict[str, Any]] | None = None,
        credentials: ServedCredentials | None = None,
        cost_limits: CostLimits | None = None,
        dissection: Any | None = None,
    ) -> None:
        self.name = name
        self.model = model.eval()
        self.card = card
        self.limits = limits or Limits()
        self.observer: Observer = SafeObserver(observer or NullObserver())
        # the engine's attributions carry the logits of their own forward pass (see _shared_pass)
        self._share_forward = explain_fn is None
        if methods_fn is None or explain_fn is None:
            eng_methods, eng_explain = _engine()
            methods_fn = methods_fn or eng_methods
            explain_fn = explain_fn or eng_explain
        self._methods_fn = methods_fn
        self._explain_fn = explain_fn
        self.methods = dict(methods_fn())
        self.cost_limits = cost_limits or CostLimits()
        self.context = _model_context(card, self.cost_limits.lrp_cache_entries)
        self.credentials = credentials or ServedCredentials()
        self.dissection = dissection  # xai_serve.dissection.evidence.Dissection: Heatmap.units

    # ------------------------------------------------------------------ public

    def handle(self, items: Sequence[pb.ExplainRequest | BaseException]) -> list[pb.ExplainResponse]:
        """One response per item, in order (see the module doc)."""
        t_start = time.perf_counter()
        n = len(items)
        responses = [pb.ExplainResponse(model=self.name) for _ in range(n)]
        try:
            self.observer.batch(n)
            state = _State()
            requests: dict[int, pb.ExplainRequest] = {}
            for i, item in enumerate(items):
                if isinstance(item, BaseException):
                    state.errors[i] = item
                    continue
                responses[i].request_id = item.request_id
                requests[i] = item
                t0 = time.perf_counter()
                try:
                    self._validate(item)
                    state.decoded[i] = decode_input(item.input, self.card, self.limits)
                except Exception as exc:
                    state.errors[i] = exc
                responses[i].timings.decode_ms = (time.perf_counter() - t0) * 1e3
            if not self._shared_pass(requests, state, responses):
                self._predict(requests, state, responses)
                self._explain_all(requests, state, responses)
        except Exception as exc:  # a bug: answer everyone rather than fail the batch
            log.error("explain service failed: %s", traceback.format_exc())
            for resp in responses:
                resp.ClearField("heatmaps")
                resp.ClearField("prediction")
                resp.status.CopyFrom(status_of(exc))
            return responses
        total_ms = (time.perf_counter() - t_start) * 1e3
        for i, err in state.errors.items():  # failures before the engine ran still count per method
            if i not in state.counted and i in requests:
                for m in requests[i].methods:  # unknown names are not labels (bounded cardinality)
                    label = m.name if m.name in self.methods else "unknown"
                    self.observer.explained(label, _status_label(err), 0.0, 1)
        for i, resp in enumerate(responses):
            if i in state.errors:
                resp.ClearField("heatmaps")
                resp.ClearField("prediction")
                resp.status.CopyFrom(status_of(state.errors[i]))
            else:
                resp.status.code = pb.OK
            resp.timings.total_ms = total_ms
            resp.timings.batch_size = n
        return responses

    # ------------------------------------------------------------------ steps

    def _validate(self, req: pb.ExplainRequest) -> None:
        seen = set()
        for m in req.methods:
            if m.name not in self.methods:
                raise UnknownMethodError(
                    f"unknown method {m.name!r}; available: {', '.join(sorted(self.methods))}"
                )
            if m.name in seen:
                raise InvalidInputError(f"method {m.name!r} is requested twice")
            self.credentials.check(m.name)  # MethodRefusedError in refusal mode
            seen.add(m.name)
        validate_target(req.target, self.card.num_classes)
        if req.target.WhichOneof("kind") == "component":  # seed A: a scalar of a named output map
            component_target(req.target.component, self.card)
        if req.top_k < 0:
            raise InvalidInputError(f"top_k must be >= 0, not {req.top_k}")
        _check_enums(req)
        check_deadline(req.deadline_unix_s)
        if req.methods:
            rows = req.target.top_k if req.target.WhichOneof("kind") == "top_k" else 1
            self.cost_limits.check(rows, {m.name: (self.methods[m.name], m.params) for m in req.methods})

    def _predict(
        self, requests: dict[int, pb.ExplainRequest], state: _State, responses: list[pb.ExplainResponse]
    ) -> None:
        idx = sorted(state.decoded)
        if not idx:
            return
        t0 = time.perf_counter()
        x = torch.stack([state.decoded[i].x for i in idx])
        try:
            with torch.inference_mode():
                logits, maps = split_outputs(self.model(x), self.card)  # several outputs: y first
                logits = logits.float()
        except Exception as exc:  # e.g. a shape the model cannot take
            for i in idx:
                state.errors[i] = InvalidInputError(f"the model could not run on this input: {exc}")
            return
        self._fill_predictions(requests, responses, state, idx, logits, (time.perf_counter() - t0) * 1e3)
        for row, i in enumerate(idx):  # the predicted yg/ys maps of a multi-output model
            fill_outputs(responses[i].prediction, maps, row)

    def _fill_predictions(
        self,
        requests: dict[int, pb.ExplainRequest],
        responses: list[pb.ExplainResponse],
        state: _State,
        idx: list[int],
        logits: torch.Tensor,
        ms: float,
    ) -> None:
        probs = torch.softmax(logits, dim=1)
        labels = self.card.labels
        for row, i in enumerate(idx):
            state.logits[i] = logits[row].clone()
            k = min(requests[i].top_k or DEFAULT_TOP_K, self.card.num_classes)
            p, c = probs[row].topk(k)
            for pi, ci in zip(p.tolist(), c.tolist(), strict=True):
                responses[i].prediction.top.add(
                    index=ci,
                    label=labels[ci] if ci < len(labels) else str(ci),
                    probability=pi,
                    logit=float(logits[row, ci]),
                )
            responses[i].timings.predict_ms = ms

    def _shared_pass(
        self, requests: dict[int, pb.ExplainRequest], state: _State, responses: list[pb.ExplainResponse]
    ) -> bool:
        """Predict and explain with ONE forward pass when the batch allows it; False: nothing done.

        Allowed when every valid request asks for the same methods, all running the model's forward
        pass once and reporting its logits (the gradient family and LRP, whose forward is the model's
        with BatchNorm merged: the same logits up to float rounding), and the
        targets are all "predicted" (or top 1) or all class indices. Any failure returns False and the
        two-pass path (prediction, then explanation with per-request retries) answers the batch.
        """
        idx = sorted(state.decoded)
        if not self._share_forward or not idx or self.card.outputs:  # multi-output: Prediction.outputs
            return False
        reqs = [requests[i] for i in idx]
        key = self._method_key(reqs[0])
        if not key or any(self._method_key(r) != key for r in reqs) or not self._forward_family(key):
            return False
        kinds = [r.target.WhichOneof("kind") for r in reqs]
        target: Any
        top1 = [
            k in (None, "predicted") or (k == "top_k" and r.target.top_k == 1)
            for k, r in zip(kinds, reqs, strict=True)
        ]
        if all(top1):
            target = "predicted"
        elif all(k == "class_index" for k in kinds):
            target = [int(r.target.class_index) for r in reqs]
        else:
            return False
        try:
            for r in reqs:
                check_deadline(r.deadline_unix_s)
            t0 = time.perf_counter()
            x = torch.stack([state.decoded[i].x for i in idx]).detach().clone()
            with torch.inference_mode(False), torch.enable_grad():
                params = self._method_params(key)
                results = self._explain_fn(self.model, x, params, target, context=self.context)
            seconds = time.perf_counter() - t0
            first = results[key[0][0]]
            logits, classes = getattr(first, "logits", None), getattr(first, "classes", None)
            if not isinstance(logits, torch.Tensor) or logits.shape != (len(idx), self.card.num_classes):
                return False
            if classes is None or len(classes) != len(idx):
                return False
            logits = logits.detach().float()
        except Exception:  # the two-pass path finds the request that fails and answers it
            return False
        self._fill_predictions(requests, responses, state, idx, logits, 0.0)
        rows = [_Row(i, int(c)) for i, c in zip(idx, classes, strict=True)]
        self._finish_group(key, rows, results, seconds, requests, state, responses)
        return True

    def _forward_family(self, key: MethodKey) -> bool:
        """Whether every method of ``key`` runs the model's forward pass once and reports its logits
        (the gradient family and LRP: ``Explainer.prediction_pass``)."""
        from xai_serve.explain.registry import method_class

        try:
            return all(method_class(name).prediction_pass for name, _ in key)
        except Exception:
            return False

    def _targets(self, req: pb.ExplainRequest, logits: torch.Tensor) -> list[int | Component]:
        kind = req.target.WhichOneof("kind")
        if kind == "component":
            return [component_target(req.target.component, self.card)]
        if kind == "class_index":
            return [int(req.target.class_index)]
        if kind == "top_k":
            return [int(c) for c in logits.topk(req.target.top_k).indices.tolist()]
        return [int(logits.argmax())]

    @staticmethod
    def _method_key(req: pb.ExplainRequest) -> MethodKey:
        return tuple((m.name, tuple(sorted(m.params.items()))) for m in req.methods)

    @staticmethod
    def _method_params(key: MethodKey) -> dict[str, dict[str, Any]]:
        return {name: dict(params) for name, params in key}

    def _explain_all(
        self, requests: dict[int, pb.ExplainRequest], state: _State, responses: list[pb.ExplainResponse]
    ) -> None:
        groups: dict[MethodKey, list[_Row]] = defaultdict(list)
        for i in sorted(state.logits):
            req = requests[i]
            if req.methods and i not in state.errors:
                try:  # the deadline may have passed while earlier requests were served
                    check_deadline(req.deadline_unix_s)
                except XaiError as exc:
                    state.errors[i] = exc
                    continue
                for t in self._targets(req, state.logits[i]):
                    groups[self._method_key(req)].append(_Row(i, t))
        for key, rows in groups.items():
            self._explain_group(key, rows, requests, state, responses)

    def _explain_group(
        self,
        key: MethodKey,
        rows: list[_Row],
        requests: dict[int, pb.ExplainRequest],
        state: _State,
        responses: list[pb.ExplainResponse],
    ) -> None:
        names = [name for name, _ in key]
        t0 = time.perf_counter()
        try:
            results = self._run_engine(key, rows, state)
        except Exception as exc:
            seconds = time.perf_counter() - t0
            members = sorted({r.request for r in rows})
            if len(members) > 1:  # find the request that caused it: retry each alone
                for i in members:
                    self._explain_group(key, [r for r in rows if r.request == i], requests, state, responses)
                return
            if not isinstance(exc, XaiError):
                log.error("explanation failed: %s", traceback.format_exc())
            for name in names:
                self.observer.explained(name, _status_label(exc), seconds, 1)
            state.errors[members[0]] = exc
            state.counted.add(members[0])
            return
        self._finish_group(key, rows, results, time.perf_counter() - t0, requests, state, responses)

    def _finish_group(
        self,
        key: MethodKey,
        rows: list[_Row],
        results: dict[str, Any],
        seconds: float,
        requests: dict[int, pb.ExplainRequest],
        state: _State,
        responses: list[pb.ExplainResponse],
    ) -> None:
        """Report and encode the results of one engine call over ``rows``."""
        names = [name for name, _ in key]
        explain_ms = seconds * 1e3
        for name in names:
            self.observer.explained(name, "ok", seconds / max(len(names), 1), len({r.request for r in rows}))
        state.counted.update(r.request for r in rows)
        t1 = time.perf_counter()
        for j, row in enumerate(rows):
            req = requests[row.request]
            resp = responses[row.request]
            resp.timings.explain_ms = explain_ms
            for name in names:
                if row.request in state.errors:
                    break
                try:
                    self._encode(resp, req, name, row.target, results[name], j, state.decoded[row.request])
                except NonFiniteResultError as exc:  # never serve a NaN
                    state.errors[row.request] = exc
        encode_ms = (time.perf_counter() - t1) * 1e3 / max(len(rows), 1)
        for i in {r.request for r in rows}:
            responses[i].timings.encode_ms += encode_ms

    def _run_engine(self, key: MethodKey, rows: list[_Row], state: _State) -> dict[str, Any]:
        x = torch.stack([state.decoded[r.request].x for r in rows]).detach().clone()
        targets = [r.target for r in rows]
        with torch.inference_mode(False), torch.enable_grad():
            results = self._explain_fn(self.model, x, self._method_params(key), targets, context=self.context)
        return results

    def _encode(
        self,
        resp: pb.ExplainResponse,
        req: pb.ExplainRequest,
        name: str,
        target: int | Component,
        result: Any,
        j: int,
        decoded: DecodedInput,
    ) -> None:
        heat = getattr(result, "heatmap", result)
        if not bool(torch.isfinite(heat[j]).all()):
            raise NonFiniteResultError(
                f"method {name!r} produced NaN or infinite values; the map is not served"
            )
        values = heat[j].detach().float().cpu().numpy()
        spec = self.methods[name]
        signed = bool(getattr(spec, "signed", True))
        kind = str(getattr(spec, "output", "heatmap"))
        component = target if isinstance(target, Component) else None
        if component is not None:  # the explained channel, resolved by the engine
            channel = (
                int(result.classes[j]) if getattr(result, "classes", None) else int(str(component.channel))
            )
            h = resp.heatmaps.add(method=name, target=channel, signed=signed, kind=kind)
            echo_component(h, component, channel)
        else:
            h = resp.heatmaps.add(method=name, target=target, signed=signed, kind=kind)
        layer = getattr(result, "layer", None)
        if layer:
            h.layer = layer
        self.credentials.fill(h, name)
        if req.output in (pb.OUTPUT_FORM_UNSPECIFIED, pb.OUTPUT_FORM_TENSOR, pb.OUTPUT_FORM_BOTH):
            encode_values(values, req.values, h.values)  # ExplainRequest.values: reduction, value type
        if req.output in (pb.OUTPUT_FORM_PNG, pb.OUTPUT_FORM_BOTH):
            pixels = decoded.pixels.numpy()
            scale = max(1, math.ceil(224 / max(values.shape[-1], 1)))
            badge = h.credential.sanity_pass if h.credential.certified else None
            h.png = overlay_png(pixels, values, signed=signed, kind=kind, scale=scale, badge=badge)
        for stat, per_sample in (getattr(result, "stats", None) or {}).items():
            try:
                v = per_sample[j]
                h.stats[stat] = float(v)
            except (IndexError, TypeError, ValueError, KeyError):
                continue
        encode_filters(h, result, j, decoded.pixels, values)  # the `decomposed` method's Heatmap.filters
        if self.dissection is not None:  # concept-labelled units of the dissected layer (Heatmap.units)
            self.dissection.fill(h, req, self.model, decoded.x, target, name, result, j, context=self.context)


def _check_enums(req: pb.ExplainRequest) -> None:
    """Enum values outside their enum (a newer client, or garbage) are INVALID_ARGUMENT, not ignored."""
    for field_name, enum, value in (
        ("output", pb.OutputForm, req.output),
        ("values.reduction", pb.ChannelReduction, req.values.reduction),
        ("values.value_type", pb.ValueType, req.values.value_type),
    ):
        if value not in enum.values():
            raise InvalidInputError(
                f"{field_name}={value} is not a value of {enum.DESCRIPTOR.name} "
                f"({', '.join(f'{n}={v}' for n, v in enum.items())})"
            )


def _model_context(card: ModelCard, lrp_cache_entries: int) -> Any:
    """The model's context: its normalisation and the LRP derived-parameter cache the service owns."""
    from xai_serve.explain import DerivedParamCache, ModelContext

    return ModelContext.of(card.mean, card.std, DerivedParamCache(lrp_cache_entries))


def _status_label(exc: BaseException) -> str:
    return (exc.code if isinstance(exc, XaiError) else "INTERNAL").lower()
