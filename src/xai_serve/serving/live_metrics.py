"""The live-credential metrics (``xai_live_*``): their one definition, and the two ways they are exported.

Every engine exports the same series from a :class:`~xai_serve.serving.live_monitor.LiveMonitor`'s
:meth:`snapshot <xai_serve.serving.live_monitor.LiveMonitor.snapshot>`:

- TorchServe (metrics port ``GET /metrics``): the definitions go into the metrics yaml ``xai serve``
  writes (:data:`TORCHSERVE_METRICS`, merged by :mod:`xai_serve.serving.metrics`), and
  :class:`TorchServeLiveSink` emits each update through the worker's ``context.metrics`` after every
  sample;
- a ``prometheus_client`` registry (e.g. a KServe engine's ``/metrics``): register
  :class:`LiveCollector`, which reads the monitors' snapshots on every scrape.

Series (labels ``model``, ``method``; ``order`` is ``morf`` or ``lerf``):

==================================  =======  ===================================================
``xai_live_samples_total``           counter  explanations checked
``xai_live_dropped_total``           counter  sampled explanations dropped (queue full)
``xai_live_errors_total``            counter  checks that failed (the request was served anyway)
``xai_live_aopc{order}``             gauge    mean AOPC of the short deletion curve, last ``window``
``xai_live_abpc``                    gauge    mean ABPC (AUC LeRF - AUC MoRF), last ``window``
``xai_live_stability``               gauge    mean Spearman of map vs perturbed-input map
``xai_live_credential_aopc{order}``  gauge    the archive's offline AOPC (credentials.json)
``xai_live_credential_abpc``         gauge    the archive's offline ABPC
``xai_live_aopc_ratio``              gauge    live MoRF AOPC / credential MoRF AOPC
``xai_live_drift_score`` (``model``)  gauge    input drift of the last ``drift_window`` samples
==================================  =======  ===================================================
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import Any

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class LiveMetric:
    name: str
    kind: str  # counter | gauge
    labels: tuple[str, ...]
    help: str
    key: str  # the snapshot field it reports


_M = ("model", "method")
_O = ("model", "method", "order")
METRICS: tuple[LiveMetric, ...] = (
    LiveMetric(
        "xai_live_samples_total", "counter", _M, "Explanations checked by the live monitor", "samples"
    ),
    LiveMetric(
        "xai_live_dropped_total", "counter", _M, "Sampled explanations dropped (queue full)", "dropped"
    ),
    LiveMetric(
        "xai_live_errors_total", "counter", _M, "Live checks that failed (requests unaffected)", "errors"
    ),
    LiveMetric("xai_live_aopc", "gauge", _O, "Live AOPC of the short deletion curve (window mean)", "aopc"),
    LiveMetric("xai_live_abpc", "gauge", _M, "Live ABPC of the short deletion curves (window mean)", "abpc"),
    LiveMetric("xai_live_stability", "gauge", _M, "Live Spearman of map vs perturbed-input map", "stability"),
    LiveMetric(
        "xai_live_credential_aopc", "gauge", _O, "Offline AOPC of the archive's credentials", "cred_aopc"
    ),
    LiveMetric(
        "xai_live_credential_abpc", "gauge", _M, "Offline ABPC of the archive's credentials", "cred_abpc"
    ),
    LiveMetric("xai_live_aopc_ratio", "gauge", _M, "Live MoRF AOPC over the credential's", "aopc_ratio"),
    LiveMetric(
        "xai_live_drift_score", "gauge", ("model",), "Input drift from the training statistics", "drift"
    ),
)
BY_NAME = {m.name: m for m in METRICS}

# entries for TorchServe's metrics yaml (model_metrics), by kind
TORCHSERVE_METRICS: dict[str, list[dict[str, Any]]] = {
    kind: [{"name": m.name, "unit": "count", "dimensions": list(m.labels)} for m in METRICS if m.kind == kind]
    for kind in ("counter", "gauge")
}

Series = tuple[LiveMetric, tuple[str, ...], float]  # metric, label values, value


def series(snapshot: dict[str, Any]) -> Iterator[Series]:
    """Every (metric, label values, value) of one monitor's snapshot; figures not measured yet (None)
    are left out, never exported as NaN."""
    model = snapshot["model"]
    for method, fig in snapshot["methods"].items():
        for m in METRICS:
            if m.key == "drift":
                continue
            if "order" in m.labels:
                for order in ("morf", "lerf"):
                    value = (fig.get(m.key) or {}).get(order)
                    if value is not None:
                        yield m, (model, method, order), float(value)
            elif fig.get(m.key) is not None:
                yield m, (model, method), float(fig[m.key])
    drift = snapshot["drift"]["score"]
    if drift is not None:
        yield BY_NAME["xai_live_drift_score"], (model,), float(drift)


class TorchServeLiveSink:
    """Emits the updated series through TorchServe's worker metrics after each sample.

    ``emit(name, kind, value, label_values)`` is the handler's metrics emitter
    (:meth:`~xai_serve.serving.metrics.TorchServeObserver.emit`); counters are sent as increments
    (TorchServe's frontend adds them up), gauges as values."""

    def __init__(self, emit: Callable[[str, str, float, list[str]], None]) -> None:
        self._emit = emit
        self._sent: dict[tuple[str, tuple[str, ...]], float] = {}

    def update(self, snapshot: dict[str, Any], methods: set[str] | None = None) -> None:
        """Emit the snapshot's series (only those of ``methods`` and the model's drift, when given)."""
        for metric, labels, value in series(snapshot):
            if methods is not None and "method" in metric.labels and labels[1] not in methods:
                continue
            if metric.kind == "counter":
                key = (metric.name, labels)
                inc = value - self._sent.get(key, 0.0)
                if inc <= 0:
                    continue
                self._sent[key] = value
                self._emit(metric.name, metric.kind, inc, list(labels))
            else:
                self._emit(metric.name, metric.kind, value, list(labels))


class LiveCollector:
    """A ``prometheus_client`` collector over the snapshots of ``monitors()`` (register it with
    ``prometheus_client.REGISTRY.register(LiveCollector(lambda: [...]))``)."""

    def __init__(self, monitors: Callable[[], Iterable[Any]]) -> None:
        self._monitors = monitors

    def collect(self) -> Iterator[Any]:
        from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily

        families: dict[str, Any] = {}
        for m in METRICS:
            labels = list(m.labels)
            if m.kind == "counter":  # prometheus_client appends _total itself
                families[m.name] = CounterMetricFamily(m.name.removesuffix("_total"), m.help, labels=labels)
            else:
                families[m.name] = GaugeMetricFamily(m.name, m.help, labels=labels)
        for monitor in self._monitors():
            try:
                snap = monitor.snapshot()
            except Exception:  # a scrape never fails because of one monitor
                log.warning("live monitor snapshot failed", exc_info=True)
                continue
            for metric, values, value in series(snap):
                families[metric.name].add_metric(list(values), value)
        yield from families.values()

    def describe(self) -> list[Any]:
        return []
