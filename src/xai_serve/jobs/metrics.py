"""Prometheus progress metrics of a batch job (``prometheus-client``).

A job's metrics live in their own registry and are written to a textfile-collector file (node
exporter's ``--collector.textfile.directory`` reads ``*.prom`` files; the file is replaced
atomically) and, with a Pushgateway URL, pushed there. The server's own metrics stay on
TorchServe's metrics endpoint; these are for offline jobs only.

Metrics (labels ``job`` = the job's name, ``shard`` = ``K/N`` or ``all``):

- ``xai_job_items_total``: items (samples) the job (this shard) has to process,
- ``xai_job_items_done``: items processed so far (stored parts found on resume count as done),
- ``xai_job_failures_total``: parts whose computation raised,
- ``xai_job_seconds``: seconds since the job started.
"""

from __future__ import annotations

import contextvars
import os
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

PUSH_INTERVAL_S = 5.0


class JobMetrics:
    """Progress of one job (or one shard of it), flushed after every change."""

    def __init__(
        self,
        job: str,
        shard: str = "all",
        textfile: str | os.PathLike[str] | None = None,
        pushgateway: str | None = None,
    ) -> None:
        from prometheus_client import CollectorRegistry, Counter, Gauge

        self.job, self.shard = job, shard
        self.textfile = Path(textfile) if textfile else None
        self.pushgateway = pushgateway
        self.registry = CollectorRegistry()
        labels = ("job", "shard")
        self._total = Gauge(
            "xai_job_items_total", "Items the job has to process", labels, registry=self.registry
        )
        self._done = Gauge("xai_job_items_done", "Items processed so far", labels, registry=self.registry)
        self._failures = Counter(
            "xai_job_failures", "Parts whose computation failed", labels, registry=self.registry
        )
        self._seconds = Gauge(
            "xai_job_seconds", "Seconds since the job started", labels, registry=self.registry
        )
        self._t0 = time.monotonic()
        self._last_push = 0.0
        self._started = False
        for m in (self._total, self._done, self._failures, self._seconds):
            m.labels(job, shard)  # present (at 0) from the first write

    def start(self, total: int, done: int = 0) -> None:
        self._started = True
        self._total.labels(self.job, self.shard).set(total)
        self._done.labels(self.job, self.shard).set(done)
        self.flush(force=True)

    def advance(self, items: int) -> None:
        self._done.labels(self.job, self.shard).inc(items)
        self.flush()

    def failure(self) -> None:
        self._failures.labels(self.job, self.shard).inc()
        self.flush(force=True)

    def finish(self) -> None:
        if self._started:  # nothing is written for a job that failed before it began
            self.flush(force=True)

    def flush(self, force: bool = False) -> None:
        from prometheus_client import generate_latest, push_to_gateway

        from xai_serve.atomic import atomic_write_bytes

        self._seconds.labels(self.job, self.shard).set(round(time.monotonic() - self._t0, 3))
        if self.textfile is not None:
            self.textfile.parent.mkdir(parents=True, exist_ok=True)
            atomic_write_bytes(self.textfile, generate_latest(self.registry))  # the exposition format
        now = time.monotonic()
        if self.pushgateway and (force or now - self._last_push >= PUSH_INTERVAL_S):
            push_to_gateway(
                self.pushgateway,
                job=f"xai-{self.job}",
                registry=self.registry,
                grouping_key={"shard": self.shard},
            )
            self._last_push = now


_ACTIVE: contextvars.ContextVar[JobMetrics | None] = contextvars.ContextVar("xai_job_metrics", default=None)


def current_metrics() -> JobMetrics | None:
    return _ACTIVE.get()


@contextmanager
def reporting(metrics: JobMetrics | None) -> Iterator[JobMetrics | None]:
    """Make ``metrics`` the active job metrics (part loops report to it); flush at the end."""
    token = _ACTIVE.set(metrics)
    try:
        yield metrics
    finally:
        _ACTIVE.reset(token)
        if metrics is not None:
            metrics.finish()
