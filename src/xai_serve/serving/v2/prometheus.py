"""The service's metrics on the kserve engine: the same names as on TorchServe
(:mod:`xai_serve.serving.metrics`), as ``prometheus_client`` metrics in the default registry, which
KServe's model server exposes on ``GET /metrics`` beside its own ``request_*_seconds`` histograms."""

from __future__ import annotations

from prometheus_client import Counter, Histogram

from xai_serve.serving.metrics import BATCH_SIZE, EXPLANATION_DURATION, EXPLANATIONS_TOTAL

_EXPLANATIONS = Counter(
    EXPLANATIONS_TOTAL.removesuffix("_total"),
    "Explanations served, by outcome",
    ["model", "method", "status"],
)
_DURATION = Histogram(EXPLANATION_DURATION, "Engine time per method call", ["model", "method"])
_BATCH = Histogram(BATCH_SIZE, "Requests per batch", ["model"], buckets=(1, 2, 4, 8, 16, 32, 64))


class PrometheusObserver:
    """Service observer for one model (never raises: the service wraps it in a SafeObserver)."""

    def __init__(self, model: str) -> None:
        self.model = model

    def explained(self, method: str, status: str, seconds: float, count: int) -> None:
        _EXPLANATIONS.labels(self.model, method, status).inc(count)
        if status == "ok":
            _DURATION.labels(self.model, method).observe(seconds)

    def batch(self, size: int) -> None:
        _BATCH.labels(self.model).observe(size)
