"""Live credentials: the served explanations, sampled, checked again off the request's path.

The archive's credentials (``xai certify``) were measured offline on validation images. A
:class:`LiveMonitor` samples served explanations at the archive's ``monitor_rate`` (``xai archive
--monitor-rate 0.01``; 0, the default, is off) and, in one background thread, runs the cheap checks of
:mod:`xai_serve.evaluation.live_checks` on that very heatmap: the short MoRF / LeRF deletion curve
(AOPC, ABPC), the map's rank stability under a slightly perturbed input (one extra explanation pass),
and the input drift of the sampled images from the card's training statistics. Running means over
the last ``window`` samples are exported as the ``xai_live_*`` metrics (:mod:`.live_metrics`) beside
the credential's offline values, and returned by the describe call (``live``).

Cost and safety:

- the service hands each batch's samples over after its answers are built (:meth:`LiveMonitor.release`);
  the queue holds at most ``monitor_queue`` samples and a sample that does not fit is dropped and
  counted (``xai_live_dropped_total``), never waited for;
- the checking thread runs at the lowest CPU priority (nice 19), so requests get the cores first;
- the checks run on the monitor's own copy of the model (explanations patch their model while they run;
  the request path's model is never touched from this thread), with its own LRP parameter cache;
- a failing check is logged and counted (``xai_live_errors_total``); it never reaches a request;
- memory: the queue, one window of scores per method and one of channel moments, all bounded;
- a method whose check would cost more than the archive's ``max_work`` (the extra explanation's
  passes plus the curve's 2 x (steps + 1) forward passes), a non-heatmap method, a component target and
  a model with several outputs are not monitored (``off`` in the describe call).
"""

from __future__ import annotations

import atexit
import copy
import logging
import math
import os
import queue
import random
import threading
import weakref
from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from typing import Any, Protocol

import numpy as np
import torch
from torch import nn

from xai_serve.errors import InvalidArgumentError
from xai_serve.evaluation.live_checks import (
    SHORT_STEPS,
    DriftReference,
    channel_moments,
    drift_score,
    perturb,
    rank_stability,
    short_deletion,
)
from xai_serve.explain import DerivedParamCache, MethodSpec, ModelContext
from xai_serve.models import ModelCard
from xai_serve.serving.limits import CostLimits
from xai_serve.serving.ports import ExplanationEngine

log = logging.getLogger(__name__)

CONFIG_KEYS = {"rate": "monitor_rate", "queue_size": "monitor_queue", "window": "monitor_window"}
CACHE_ENTRIES = 64  # the monitor's own LRP derived-parameter cache
NICE = 19  # the checking thread's CPU priority (lowest): requests first


@dataclass(frozen=True)
class MonitorConfig:
    """The archive's monitoring settings (model-config.yaml ``xai:`` keys ``monitor_rate``,
    ``monitor_queue``, ``monitor_window``)."""

    rate: float = 0.0
    queue_size: int = 16
    window: int = 256
    drift_window: int = 64
    steps: int = SHORT_STEPS
    seed: int = 0

    def __post_init__(self) -> None:
        if not (isinstance(self.rate, int | float) and 0.0 <= self.rate <= 1.0):
            raise InvalidArgumentError(f"monitor rate must be in [0, 1], not {self.rate!r}")
        for name in ("queue_size", "window", "drift_window", "steps"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise InvalidArgumentError(f"monitor {name} must be an integer >= 1, not {value!r}")

    @classmethod
    def from_config(cls, config: Mapping[str, Any]) -> MonitorConfig:
        kwargs: dict[str, Any] = {}
        for f in fields(cls):
            key = CONFIG_KEYS.get(f.name)
            if key and config.get(key) is not None:
                try:
                    kwargs[f.name] = float(config[key]) if f.name == "rate" else int(config[key])
                except (TypeError, ValueError):
                    raise InvalidArgumentError(f"{key} in model-config.yaml must be a number") from None
        return cls(**kwargs)

    def to_config(self) -> dict[str, Any]:
        return {key: getattr(self, name) for name, key in CONFIG_KEYS.items()}


class LiveSink(Protocol):
    """Receives the monitor's snapshot after every change (the TorchServe metrics emitter)."""

    def update(self, snapshot: dict[str, Any], methods: set[str] | None = None) -> None: ...


@dataclass
class Sample:
    """One sampled explanation: the model input and pixels [C,H,W], the explained class and its map."""

    method: str
    params: dict[str, str]
    target: int
    x: torch.Tensor
    pixels: torch.Tensor
    heatmap: torch.Tensor


@dataclass
class _Figures:
    window: int
    samples: int = 0
    dropped: int = 0
    errors: int = 0
    aopc_morf: deque[float] = field(default_factory=deque)
    aopc_lerf: deque[float] = field(default_factory=deque)
    abpc: deque[float] = field(default_factory=deque)
    stability: deque[float] = field(default_factory=deque)

    def __post_init__(self) -> None:
        for name in ("aopc_morf", "aopc_lerf", "abpc", "stability"):
            setattr(self, name, deque(maxlen=self.window))


def _mean(values: deque[float]) -> float | None:
    return float(np.mean(values)) if values else None


def _add(values: deque[float], value: float) -> None:
    if math.isfinite(value):
        values.append(value)


def drift_reference(card: ModelCard) -> DriftReference:
    """The card's training statistics (``input_stats``), else its normalisation mean / std."""
    stats = card.input_stats
    if stats.get("mean") and stats.get("std"):
        return DriftReference(tuple(stats["mean"]), tuple(stats["std"]))
    return DriftReference(tuple(card.mean), tuple(card.std))


class LiveMonitor:
    """Samples and checks the explanations of one served model (see the module doc)."""

    def __init__(
        self,
        name: str,
        model: nn.Module,
        card: ModelCard,
        *,
        engine: ExplanationEngine,
        methods: Mapping[str, MethodSpec],
        credentials: Mapping[str, Any] | None = None,
        cost_limits: CostLimits | None = None,
        config: MonitorConfig | None = None,
        sink: LiveSink | None = None,
    ) -> None:
        self.name = name
        self.config = config or MonitorConfig()
        self.card = card
        self.engine = engine
        self.methods = methods
        self.cost_limits = cost_limits or CostLimits()
        self.credentials = dict((credentials or {}).get("methods") or {})
        self.sink = sink
        self.reference = drift_reference(card)
        self.enabled = self.config.rate > 0 and not card.outputs
        self._model = model
        if self.enabled:
            try:  # the checks' own copy: the request path's model is never touched from the thread
                self._model = copy.deepcopy(model).eval()
            except Exception:  # a model that cannot be copied is served unmonitored, never refused
                log.error("live monitor: could not copy the model; monitoring is off", exc_info=True)
                self.enabled = False
        self._context = ModelContext.of(card.mean, card.std, DerivedParamCache(CACHE_ENTRIES))
        self._rng = random.Random(self.config.seed)
        self._queue: queue.Queue[Sample | None] = queue.Queue(maxsize=self.config.queue_size)
        self._pending: list[Sample] = []
        self._lock = threading.Lock()
        self._figures: dict[str, _Figures] = {}
        self._moments: deque[tuple[np.ndarray, np.ndarray]] = deque(maxlen=self.config.drift_window)
        self._off: dict[str, str] = {}
        self._thread: threading.Thread | None = None
        self._checked = 0

    # ------------------------------------------------------------ request path (never raises)

    def consider(
        self,
        method: str,
        params: Mapping[str, str],
        target: object,
        x: torch.Tensor,
        pixels: torch.Tensor,
        heatmap: torch.Tensor,
    ) -> None:
        """Sample this explanation (rate ``monitor_rate``); kept until :meth:`release`."""
        if not self.enabled or not isinstance(target, int):
            return
        try:
            if self._is_off(method, params) or self._rng.random() >= self.config.rate:
                return
            self._pending.append(
                Sample(
                    method, dict(params), target, x.detach().clone(), pixels.detach().clone(), heatmap.clone()
                )
            )
        except Exception:  # monitoring never fails a request
            log.warning("live monitor: sampling failed", exc_info=True)

    def release(self) -> None:
        """Queue the samples of the batch just answered (dropped, and counted, when the queue is full)."""
        if not self._pending:
            return
        try:
            pending, self._pending = self._pending, []
            dropped: set[str] = set()
            for sample in pending:
                try:
                    self._queue.put_nowait(sample)
                except queue.Full:
                    with self._lock:
                        self._figure(sample.method).dropped += 1
                    dropped.add(sample.method)
            self._start()
            if dropped:
                self._publish(dropped)
        except Exception:
            log.warning("live monitor: queueing failed", exc_info=True)

    def discard(self) -> None:
        """Forget the samples of a batch that failed as a whole (its answers carry no heatmap)."""
        self._pending = []

    def _is_off(self, method: str, params: Mapping[str, str]) -> bool:
        if method in self._off:
            return True
        spec = self.methods.get(method)
        reason = None
        if spec is None or spec.output != "heatmap":
            reason = "not a heatmap method"
        elif spec.work(params) + 2 * (self.config.steps + 1) > self.cost_limits.max_work:
            reason = f"its check costs more than the archive's max_work={self.cost_limits.max_work:g}"
        if reason is None:
            return False
        self._off[method] = reason
        return True

    # ------------------------------------------------------------ background thread

    def _start(self) -> None:
        if self._thread is None or not self._thread.is_alive():
            self._thread = threading.Thread(target=self._run, name=f"xai-live-{self.name}", daemon=True)
            self._thread.start()
            _RUNNING.add(self)

    def close(self, timeout: float = 2.0) -> None:
        """Stop the checking thread after the sample in hand (queued samples are dropped)."""
        thread = self._thread
        if thread is None or not thread.is_alive():
            return
        while True:
            try:
                self._queue.get_nowait()
                self._queue.task_done()
            except queue.Empty:
                break
        try:
            self._queue.put(None, timeout=timeout)
        except queue.Full:
            return
        thread.join(timeout)

    def _run(self) -> None:
        lower_priority()
        while True:
            sample = self._queue.get()
            if sample is None:  # close(): the process is exiting
                self._queue.task_done()
                return
            try:
                self._check(sample)
            except Exception:
                log.warning("live monitor: check of %s failed", sample.method, exc_info=True)
                with self._lock:
                    self._figure(sample.method).errors += 1
            finally:
                self._queue.task_done()
            self._publish({sample.method})

    def _check(self, sample: Sample) -> None:
        x = sample.x.unsqueeze(0)
        t = torch.tensor([sample.target])
        heat = sample.heatmap.unsqueeze(0)
        with torch.no_grad():
            curve = short_deletion(self._model, x, t, heat, steps=self.config.steps)
        generator = torch.Generator().manual_seed(self.config.seed + self._checked)
        self._checked += 1
        xp = perturb(x, generator).detach().clone()
        with torch.inference_mode(False), torch.enable_grad():
            again = self.engine.explain(
                self._model, xp, {sample.method: sample.params}, [sample.target], self._context
            )
        stability = float(rank_stability(heat, again[sample.method].heatmap)[0])
        moments = channel_moments(sample.pixels)
        with self._lock:
            fig = self._figure(sample.method)
            fig.samples += 1
            _add(fig.aopc_morf, float(curve.aopc_morf[0]))
            _add(fig.aopc_lerf, float(curve.aopc_lerf[0]))
            _add(fig.abpc, float(curve.abpc[0]))
            _add(fig.stability, stability)
            self._moments.append(moments)

    def _figure(self, method: str) -> _Figures:
        if method not in self._figures:
            self._figures[method] = _Figures(self.config.window)
        return self._figures[method]

    def _publish(self, methods: set[str]) -> None:
        """Send the series of ``methods`` (and the drift) to the sink."""
        if self.sink is None:
            return
        try:
            self.sink.update(self.snapshot(), methods)
        except Exception:
            log.warning("live monitor: publishing the metrics failed", exc_info=True)

    def wait(self, timeout: float = 60.0) -> bool:
        """Block until every queued sample is checked (tests and benchmarks); False on timeout."""
        done = threading.Event()

        def join() -> None:
            self._queue.join()
            done.set()

        threading.Thread(target=join, daemon=True).start()
        return done.wait(timeout)

    # ------------------------------------------------------------ figures

    def snapshot(self) -> dict[str, Any]:
        """The figures per method, the drift and the settings (the describe call's ``live``)."""
        with self._lock:
            names = sorted(set(self._figures) | (set(self.credentials) if self.enabled else set()))
            methods = {m: self._method_figures(m) for m in names}
            moments = list(self._moments)
        score = None
        if moments:
            score = drift_score(
                np.stack([m for m, _ in moments]), np.stack([s for _, s in moments]), self.reference
            )
        return {
            "model": self.name,
            "rate": self.config.rate,
            "enabled": self.enabled,
            "steps": self.config.steps,
            "window": self.config.window,
            "queue_size": self.config.queue_size,
            "queued": self._queue.unfinished_tasks,  # waiting or being checked
            "methods": methods,
            "drift": {
                "score": score,
                "samples": len(moments),
                "window": self.config.drift_window,
                "reference": self.reference.to_dict(),
            },
            "off": dict(self._off),
        }

    def _method_figures(self, method: str) -> dict[str, Any]:
        fig = self._figures.get(method) or _Figures(self.config.window)
        live_morf, live_lerf = _mean(fig.aopc_morf), _mean(fig.aopc_lerf)
        cred = (self.credentials.get(method) or {}).get("faithfulness") or {}
        cred_morf, cred_lerf = _finite(cred.get("aopc_morf")), _finite(cred.get("aopc_lerf"))
        ratio = live_morf / cred_morf if live_morf is not None and cred_morf else None
        return {
            "samples": fig.samples,
            "dropped": fig.dropped,
            "errors": fig.errors,
            "aopc": {"morf": live_morf, "lerf": live_lerf} if fig.aopc_morf else None,
            "abpc": _mean(fig.abpc),
            "stability": _mean(fig.stability),
            "cred_aopc": {"morf": cred_morf, "lerf": cred_lerf} if cred else None,
            "cred_abpc": _finite(cred.get("abpc")),
            "aopc_ratio": ratio,
        }


_RUNNING: weakref.WeakSet[LiveMonitor] = weakref.WeakSet()


@atexit.register
def _close_all() -> None:
    """Stop every checking thread before the interpreter tears torch down (a thread still inside torch
    at exit aborts the process)."""
    for monitor in list(_RUNNING):
        monitor.close()


def lower_priority() -> None:
    """Give the calling thread the lowest CPU priority (Linux: nice is per thread, and threads it starts
    inherit it), so the kernel runs the request path first when both want the cores."""
    try:
        os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), NICE)
    except (AttributeError, OSError):  # not Linux, or not permitted: the checks run at normal priority
        log.debug("live monitor: could not lower the thread's priority", exc_info=True)


def _finite(value: Any) -> float | None:
    try:
        v = float(value)
    except (TypeError, ValueError):
        return None
    return v if math.isfinite(v) else None
