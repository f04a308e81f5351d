"""A closed-loop load generator over the xai_client ``Client`` (gRPC and HTTP).

``clients`` threads each own one ``Client`` per protocol and send their next request as soon as the
previous one is answered (closed loop: the offered load adapts to the server, nothing queues up in
the generator). Each request is an :class:`Operation` drawn at random (by weight, from a seeded
generator per thread) from a mix of predictions and explanations. The run stops after
``duration_s`` seconds or ``total_requests`` requests, whichever comes first, and returns counts,
errors by type (with a few sample messages) and latency percentiles overall and per operation.

Used by ``tests/load/`` (sustained load, faults) and ``bench/load.py``; it imports no torch.
"""

from __future__ import annotations

import math
import random
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

from xai_client.client import Client
from xai_client.requests import ImageLike

PERCENTILES = (50.0, 90.0, 95.0, 99.0)
_MAX_SAMPLES_PER_ERROR = 3


@dataclass(frozen=True)
class Operation:
    """One kind of request: ``methods`` empty is a prediction, otherwise an explanation."""

    protocol: str  # "grpc" | "http"
    methods: tuple[str, ...] = ()
    weight: float = 1.0
    target: int | str | None = None

    @property
    def name(self) -> str:
        what = "predict" if not self.methods else "explain " + "+".join(self.methods)
        return f"{self.protocol} {what}"


def mixed_operations(methods: Sequence[str], protocols: Sequence[str] = ("grpc", "http")) -> list[Operation]:
    """A prediction and one explanation per method, on every protocol, equally weighted."""
    ops = []
    for protocol in protocols:
        ops.append(Operation(protocol))
        ops += [Operation(protocol, (m,)) for m in methods]
    return ops


def percentile(sorted_values: Sequence[float], q: float) -> float:
    """Linear-interpolated ``q``-th percentile (0..100) of already sorted values (NaN if empty)."""
    if not sorted_values:
        return math.nan
    pos = (len(sorted_values) - 1) * q / 100.0
    lo = math.floor(pos)
    hi = min(lo + 1, len(sorted_values) - 1)
    return sorted_values[lo] + (sorted_values[hi] - sorted_values[lo]) * (pos - lo)


def latency_summary(seconds: Sequence[float]) -> dict[str, float]:
    """``p50/p90/p95/p99/max/mean`` in milliseconds."""
    xs = sorted(s * 1000.0 for s in seconds)
    out = {f"p{q:g}_ms": percentile(xs, q) for q in PERCENTILES}
    out["max_ms"] = xs[-1] if xs else math.nan
    out["mean_ms"] = sum(xs) / len(xs) if xs else math.nan
    return out


@dataclass
class OperationStats:
    ok: int = 0
    errors: dict[str, int] = field(default_factory=dict)
    latencies_s: list[float] = field(default_factory=list)  # of successful requests


@dataclass
class LoadResult:
    clients: int
    duration_s: float
    ok: int
    errors: dict[str, int]  # exception class name -> count
    error_samples: dict[str, list[str]]
    latency: dict[str, float]  # of successful requests, ms
    max_latency_any_s: float  # slowest request, failed ones included
    throughput_per_s: float
    operations: dict[str, dict[str, Any]]

    @property
    def total(self) -> int:
        return self.ok + sum(self.errors.values())

    @property
    def error_count(self) -> int:
        return sum(self.errors.values())

    def as_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["total"] = self.total
        return out

    def summary(self) -> str:
        lat = self.latency
        return (
            f"{self.total} requests in {self.duration_s:.1f} s from {self.clients} clients "
            f"({self.throughput_per_s:.1f}/s), errors {self.errors or 0}; latency ms "
            f"p50 {lat['p50_ms']:.1f} p90 {lat['p90_ms']:.1f} p99 {lat['p99_ms']:.1f} max {lat['max_ms']:.1f}"
        )


class _Recorder:
    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.stats: dict[str, OperationStats] = {}
        self.samples: dict[str, list[str]] = {}
        self.max_any = 0.0
        self.count = 0

    def claim(self, limit: int | None) -> bool:
        """Reserve one request slot (False once ``limit`` requests were started)."""
        with self.lock:
            if limit is not None and self.count >= limit:
                return False
            self.count += 1
            return True

    def record(self, op: str, seconds: float, error: BaseException | None) -> None:
        with self.lock:
            st = self.stats.setdefault(op, OperationStats())
            self.max_any = max(self.max_any, seconds)
            if error is None:
                st.ok += 1
                st.latencies_s.append(seconds)
                return
            kind = type(error).__name__
            st.errors[kind] = st.errors.get(kind, 0) + 1
            samples = self.samples.setdefault(kind, [])
            if len(samples) < _MAX_SAMPLES_PER_ERROR:
                samples.append(f"{op}: {error}"[:300])


def run_load(
    make_client: Callable[[str], Client],
    model: str,
    images: Sequence[ImageLike],
    operations: Sequence[Operation],
    *,
    clients: int = 16,
    duration_s: float | None = 60.0,
    total_requests: int | None = None,
    seed: int = 0,
    stop: threading.Event | None = None,
) -> LoadResult:
    """Run the closed loop; see the module doc. ``make_client(protocol)`` builds one client
    (its timeout and retries apply); ``stop`` ends the run early when set."""
    if duration_s is None and total_requests is None:
        raise ValueError("give duration_s, total_requests or both")
    if not operations or not images:
        raise ValueError("need at least one operation and one image")
    weights = [op.weight for op in operations]
    protocols = sorted({op.protocol for op in operations})
    rec = _Recorder()
    stop = stop or threading.Event()
    start = time.perf_counter()
    deadline = None if duration_s is None else start + duration_s
    failures: list[BaseException] = []

    def worker(index: int) -> None:
        rng = random.Random(seed * 1_000_003 + index)
        own = {p: make_client(p) for p in protocols}
        try:
            while not stop.is_set() and (deadline is None or time.perf_counter() < deadline):
                if not rec.claim(total_requests):
                    return
                op = rng.choices(operations, weights)[0]
                image = images[rng.randrange(len(images))]
                client = own[op.protocol]
                t0 = time.perf_counter()
                error: BaseException | None = None
                try:
                    if op.methods:
                        client.explain(model, image, list(op.methods), target=op.target)
                    else:
                        client.predict(model, image)
                except Exception as exc:  # counted by type; the loop goes on
                    error = exc
                rec.record(op.name, time.perf_counter() - t0, error)
        except BaseException as exc:  # pragma: no cover - a bug in the generator itself
            failures.append(exc)
        finally:
            for c in own.values():
                c.close()

    threads = [
        threading.Thread(target=worker, args=(i,), name=f"loadgen-{i}", daemon=True) for i in range(clients)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    elapsed = time.perf_counter() - start
    if failures:
        raise failures[0]

    all_lat: list[float] = []
    errors: dict[str, int] = {}
    per_op: dict[str, dict[str, Any]] = {}
    for name, st in sorted(rec.stats.items()):
        all_lat += st.latencies_s
        for k, v in st.errors.items():
            errors[k] = errors.get(k, 0) + v
        per_op[name] = {"ok": st.ok, "errors": dict(st.errors), "latency": latency_summary(st.latencies_s)}
    ok = sum(st.ok for st in rec.stats.values())
    return LoadResult(
        clients=clients,
        duration_s=elapsed,
        ok=ok,
        errors=errors,
        error_samples=dict(rec.samples),
        latency=latency_summary(all_lat),
        max_latency_any_s=rec.max_any,
        throughput_per_s=(ok + sum(errors.values())) / elapsed if elapsed > 0 else math.nan,
        operations=per_op,
    )
