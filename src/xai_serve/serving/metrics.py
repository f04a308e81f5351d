"""Prometheus metrics emitted by the handler, declared in TorchServe's metrics yaml.

TorchServe drops backend metrics that its ``metrics_config`` does not declare, so ``xai serve``
writes a copy of TorchServe's default ``metrics.yaml`` with these added under ``model_metrics``:

- ``xai_explanations_total{model,method,status}`` (counter): explanations served, by outcome;
- ``xai_explanation_duration_seconds{model,method}`` (histogram): engine time per method call;
- ``xai_batch_size{model}`` (histogram): requests per batch the handler received;
- the live-credential series ``xai_live_*`` (:mod:`xai_serve.serving.live_metrics`).
- ``xai_cache_hits_total{model}`` / ``xai_cache_misses_total{model}`` (counters) and
  ``xai_cache_bytes{model}`` (gauge): the explanation cache (``serving/explanation_cache.py``).

With ``metrics_mode=prometheus`` they appear on the metrics port (``GET /metrics``).
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import yaml

from xai_serve.serving.live_metrics import TORCHSERVE_METRICS

log = logging.getLogger(__name__)

EXPLANATIONS_TOTAL = "xai_explanations_total"
EXPLANATION_DURATION = "xai_explanation_duration_seconds"
BATCH_SIZE = "xai_batch_size"
CACHE_HITS = "xai_cache_hits_total"
CACHE_MISSES = "xai_cache_misses_total"
CACHE_BYTES = "xai_cache_bytes"

MODEL_METRICS: dict[str, list[dict[str, Any]]] = {
    "counter": [
        {"name": EXPLANATIONS_TOTAL, "unit": "count", "dimensions": ["model", "method", "status"]},
        {"name": CACHE_HITS, "unit": "count", "dimensions": ["model"]},
        {"name": CACHE_MISSES, "unit": "count", "dimensions": ["model"]},
    ],
    "gauge": [{"name": CACHE_BYTES, "unit": "bytes", "dimensions": ["model"]}],
    "histogram": [
        {"name": EXPLANATION_DURATION, "unit": "seconds", "dimensions": ["model", "method"]},
        {"name": BATCH_SIZE, "unit": "count", "dimensions": ["model"]},
    ],
}
for _kind, _entries in TORCHSERVE_METRICS.items():
    MODEL_METRICS.setdefault(_kind, []).extend(_entries)


def metrics_config() -> dict[str, Any]:
    """TorchServe's default metrics definitions plus ours."""
    import ts

    default = Path(ts.__file__).parent / "configs" / "metrics.yaml"
    config: dict[str, Any] = yaml.safe_load(default.read_text())
    model_metrics = config.setdefault("model_metrics", {})
    for kind, entries in MODEL_METRICS.items():
        existing = model_metrics.setdefault(kind, []) or []
        names = {e["name"] for e in existing}
        existing.extend(e for e in entries if e["name"] not in names)
        model_metrics[kind] = existing
    return config


def write_metrics_config(path: Path) -> Path:
    path.write_text(yaml.safe_dump(metrics_config(), sort_keys=False))
    return path


class TorchServeObserver:
    """Service observer that reports through TorchServe's ``context.metrics`` (never raises)."""

    def __init__(self, metrics: Any, model: str) -> None:
        self.metrics = metrics  # TorchServe's context.metrics (the handler refreshes it per batch)
        self._model = model
        self._cache_seen = (0, 0)  # hits and misses already reported

    def emit(self, name: str, kind: str, value: float, dims: list[str]) -> None:
        """Emit one declared metric (also from the live monitor's thread)."""
        try:
            from ts.metrics.metric_type_enum import MetricTypes

            metric = self.metrics.get_metric(name, MetricTypes(kind))
            metric.add_or_update(value, dims)
        except Exception as exc:  # metrics must never fail a request
            log.debug("metric %s not emitted: %s", name, exc)

    def explained(self, method: str, status: str, seconds: float, count: int) -> None:
        self.emit(EXPLANATIONS_TOTAL, "counter", count, [self._model, method, status])
        if status == "ok":
            self.emit(EXPLANATION_DURATION, "histogram", seconds, [self._model, method])

    def batch(self, size: int) -> None:
        self.emit(BATCH_SIZE, "histogram", size, [self._model])

    def cache(self, stats: Any) -> None:
        """The explanation cache's new hits and misses since the last report, and its bytes now."""
        hits, misses = stats.hits - self._cache_seen[0], stats.misses - self._cache_seen[1]
        self._cache_seen = (stats.hits, stats.misses)
        if hits:
            self.emit(CACHE_HITS, "counter", hits, [self._model])
        if misses:
            self.emit(CACHE_MISSES, "counter", misses, [self._model])
        if self._cache_seen != (0, 0):
            self.emit(CACHE_BYTES, "gauge", stats.bytes, [self._model])
