"""Sustained closed-loop load (``xai_serve.serving.loadgen``) on the digits MLP served by TorchServe
(batch 8, 5 ms max delay, one worker, one torch thread): 16 clients over gRPC and HTTP with a mix of
predictions and gradient / input×gradient / guided backprop / LRP explanations, as in
``tests/load/test_load.py``. Reports throughput, latency percentiles, errors and the worker's RSS
growth across the run (after a warm-up); then SIGKILLs the worker under load (8 clients whose
``Client`` retries ``Unavailable``) and reports the recovery time (kill -> new worker READY) and the
errors the callers saw (target: none, the retries absorb the in-flight failures).
"""

from __future__ import annotations

import os
import signal
import threading
import time
from typing import Any

import psutil
from xai_client.client import Client

from bench import servers
from bench.common import Measurement
from xai_serve.serving.loadgen import LoadResult, Operation, mixed_operations, run_load

METHODS = ("gradient", "input_x_gradient", "guided_backprop", "lrp")
CLIENTS = 16


def run(quick: bool) -> list[Measurement]:
    import numpy as np

    running = servers.digits()
    rng = np.random.default_rng(0)
    images = [rng.random((1, 28, 28), dtype=np.float32) for _ in range(16)]
    ops = mixed_operations(METHODS)

    def make_client(protocol: str) -> Client:
        return running.client(protocol, timeout=30.0, retries=0)

    run_load(make_client, servers.DIGITS, images, ops, clients=CLIENTS, duration_s=None, total_requests=400)
    (pid,) = running.worker_pids(servers.DIGITS)
    before = psutil.Process(pid).memory_info().rss
    seconds = 20.0 if quick else 60.0
    result = run_load(make_client, servers.DIGITS, images, ops, clients=CLIENTS, duration_s=seconds, seed=1)
    after = psutil.Process(pid).memory_info().rss
    case = f"digits MLP, {CLIENTS} clients, {len(ops)} operations (gRPC+HTTP), {seconds:.0f} s"
    lat = result.latency
    n = result.ok

    def row(name: str, unit: str, value: float, target: str | None = None, **extra: object) -> Measurement:
        return Measurement("load", case, name, unit, value, n=n, target=target, extra=dict(extra))

    rows = [
        row("throughput", "req/s", result.throughput_per_s, total=result.total),
        row("errors", "count", float(result.error_count), "== 0", by_type=result.errors),
        row("latency p50", "ms", lat["p50_ms"]),
        row("latency p90", "ms", lat["p90_ms"]),
        row("latency p99", "ms", lat["p99_ms"]),
        row("latency max", "ms", lat["max_ms"]),
        row(
            "worker RSS growth",
            "%",
            (after / before - 1.0) * 100.0,
            "< 5",
            note=f"{before / 2**20:.0f} -> {after / 2**20:.0f} MiB over {result.total} requests",
        ),
    ]
    for name, op in result.operations.items():
        rows.append(Measurement("load", case, f"{name} p50", "ms", op["latency"]["p50_ms"], n=op["ok"]))
    return rows + _recovery_rows(running, images, ops)


def _recovery_rows(running: servers.Running, images: list[Any], ops: list[Operation]) -> list[Measurement]:
    """Kill the worker during load; time until a new worker is READY; errors seen by the callers."""

    def make_client(protocol: str) -> Client:
        return running.client(protocol, timeout=30.0, retries=4)

    stop = threading.Event()
    out: dict[str, LoadResult] = {}
    loader = threading.Thread(
        target=lambda: out.update(
            r=run_load(make_client, servers.DIGITS, images, ops, clients=8, duration_s=300.0, stop=stop)
        ),
        daemon=True,
    )
    (old,) = running.worker_pids(servers.DIGITS)
    loader.start()
    time.sleep(3.0)
    t0 = time.monotonic()
    os.kill(old, signal.SIGKILL)
    new: list[int] = []
    while not new and time.monotonic() - t0 < 180:
        try:
            new = [p for p in running.worker_pids(servers.DIGITS) if p != old]
        except Exception:
            new = []
        time.sleep(0.1)
    recovery = time.monotonic() - t0
    time.sleep(2.0)
    stop.set()
    loader.join(timeout=300)
    result = out["r"]
    case = "worker SIGKILLed under load: 8 clients, Client(retries=4)"
    return [
        Measurement(
            "load",
            case,
            "recovery: kill -> new worker READY",
            "s",
            recovery,
            n=1,
            extra={"new_worker": bool(new)},
        ),
        Measurement(
            "load",
            case,
            "errors seen by callers",
            "count",
            float(result.error_count),
            n=result.total,
            target="== 0",
            extra={"by_type": result.errors},
        ),
        Measurement(
            "load", case, "slowest call (retries included)", "ms", result.latency["max_ms"], n=result.ok
        ),
    ]
