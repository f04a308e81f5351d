"""The closed-loop load generator (xai_serve.serving.loadgen) against fake clients: percentiles,
request limits, error accounting by type, per-operation stats."""

from __future__ import annotations

import threading
import time
from typing import Any, ClassVar

import pytest
from xai_client.errors import InvalidArgument, Unavailable

from xai_serve.serving.loadgen import Operation, latency_summary, mixed_operations, percentile, run_load


def test_percentile_interpolates_linearly() -> None:
    xs = [1.0, 2.0, 3.0, 4.0, 5.0]
    assert percentile(xs, 0) == 1.0
    assert percentile(xs, 50) == 3.0
    assert percentile(xs, 100) == 5.0
    assert percentile(xs, 90) == pytest.approx(4.6)
    assert percentile([7.0], 99) == 7.0
    s = latency_summary([0.001 * i for i in range(1, 101)])  # 1..100 ms
    assert s["p50_ms"] == pytest.approx(50.5)
    assert s["p99_ms"] == pytest.approx(99.01)
    assert s["max_ms"] == pytest.approx(100.0)
    assert s["mean_ms"] == pytest.approx(50.5)


def test_mixed_operations_names() -> None:
    ops = mixed_operations(["gradient", "lrp"])
    assert [op.name for op in ops] == [
        "grpc predict",
        "grpc explain gradient",
        "grpc explain lrp",
        "http predict",
        "http explain gradient",
        "http explain lrp",
    ]


class FakeClient:
    """Answers after ``delay`` seconds; every ``fail_every``-th call per client raises ``error``."""

    instances: ClassVar[list[FakeClient]] = []
    lock = threading.Lock()

    def __init__(
        self, protocol: str, delay: float = 0.001, fail_every: int = 0, error: type[Exception] = Unavailable
    ) -> None:
        self.protocol, self.delay, self.fail_every, self.error = protocol, delay, fail_every, error
        self.calls: list[tuple[str, tuple[str, ...]]] = []
        self.closed = False
        with FakeClient.lock:
            FakeClient.instances.append(self)

    def _call(self, kind: tuple[str, ...]) -> Any:
        self.calls.append((self.protocol, kind))
        time.sleep(self.delay)
        if self.fail_every and len(self.calls) % self.fail_every == 0:
            raise self.error("injected")
        return object()

    def predict(self, model: str, image: Any) -> Any:
        return self._call(())

    def explain(self, model: str, image: Any, methods: list[str], target: Any = None) -> Any:
        return self._call(tuple(methods))

    def close(self) -> None:
        self.closed = True


def test_total_requests_limit_and_per_operation_counts() -> None:
    FakeClient.instances = []
    ops = mixed_operations(["gradient"])
    r = run_load(lambda p: FakeClient(p), "m", [b"x"], ops, clients=4, duration_s=None, total_requests=200)
    assert r.total == r.ok == 200 and r.error_count == 0
    assert len(FakeClient.instances) == 4 * 2  # one client per protocol per thread
    assert all(c.closed for c in FakeClient.instances)
    assert sum(op["ok"] for op in r.operations.values()) == 200
    assert set(r.operations) <= {op.name for op in ops}
    assert r.latency["p50_ms"] >= 1.0  # each fake call sleeps 1 ms
    assert r.as_dict()["total"] == 200


def test_errors_are_counted_by_type_and_do_not_stop_the_loop() -> None:
    ops = [Operation("grpc", ("gradient",))]
    r = run_load(
        lambda p: FakeClient(p, fail_every=4, error=InvalidArgument),
        "m",
        [b"x"],
        ops,
        clients=1,
        duration_s=None,
        total_requests=100,
    )
    assert r.total == 100
    assert r.errors == {"InvalidArgument": 25}
    assert r.ok == 75
    assert len(r.error_samples["InvalidArgument"]) == 3
    assert "grpc explain gradient: injected" in r.error_samples["InvalidArgument"][0]


def test_duration_and_stop_event() -> None:
    stop = threading.Event()
    threading.Timer(0.2, stop.set).start()
    t0 = time.perf_counter()
    r = run_load(
        lambda p: FakeClient(p, delay=0.005),
        "m",
        [b"x"],
        [Operation("http")],
        clients=3,
        duration_s=30.0,
        stop=stop,
    )
    assert time.perf_counter() - t0 < 5.0
    assert r.total > 0 and r.error_count == 0
    r2 = run_load(lambda p: FakeClient(p), "m", [b"x"], [Operation("http")], clients=2, duration_s=0.1)
    assert 0.1 <= r2.duration_s < 2.0


def test_needs_a_bound() -> None:
    with pytest.raises(ValueError):
        run_load(lambda p: FakeClient(p), "m", [b"x"], [Operation("grpc")], duration_s=None)
