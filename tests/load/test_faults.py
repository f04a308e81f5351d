"""Faults under load against a real TorchServe.

- A worker process is SIGKILLed while 8 closed-loop clients (gRPC and HTTP) keep it busy:
  TorchServe starts a new worker (new PID, READY); the requests in flight at the kill fail with
  ``Unavailable`` and the client's retry succeeds, so the callers see zero errors; no attempt runs
  past its deadline. The recovery time (kill -> new worker READY) is printed and written to JSON.
- The whole server is stopped and started again on the same ports: a client created before the
  restart gets ``Unavailable`` (not a hang) while it is down and succeeds once it is back.
"""

from __future__ import annotations

import os
import signal
import threading
import time
from pathlib import Path
from typing import Any

import pytest
from load_support import MLP_METHODS, ServedModel, images, write_json
from xai_client.client import Client
from xai_client.errors import Unavailable, XaiClientError

from xai_serve.serving import server as srv
from xai_serve.serving.loadgen import LoadResult, mixed_operations, run_load

pytestmark = [pytest.mark.slow, pytest.mark.integration]

SERVE_OPTIONS = {"batch_size": 4, "max_batch_delay_ms": 5, "workers": 1}
DEADLINE_S = 30.0  # per attempt (the client's timeout)
SLACK_S = 2.0


class CountingTransport:
    """Wraps a client's transport and records every failed attempt (type, seconds) and the slowest
    attempt, so the test sees what the client's retries hide."""

    def __init__(self, inner: Any, log: list[tuple[str, float]], lock: threading.Lock) -> None:
        self._inner = inner
        self._log = log
        self._lock = lock
        self.slowest = 0.0

    def call(self, *args: Any, **kwargs: Any) -> Any:
        t0 = time.perf_counter()
        try:
            return self._inner.call(*args, **kwargs)
        except XaiClientError as exc:
            with self._lock:
                self._log.append((type(exc).__name__, time.perf_counter() - t0))
            raise
        finally:
            self.slowest = max(self.slowest, time.perf_counter() - t0)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)


def test_killed_worker_is_restarted_and_client_retries_succeed(served: ServedModel, tmp_path: Path) -> None:
    failed_attempts: list[tuple[str, float]] = []
    lock = threading.Lock()
    transports: list[CountingTransport] = []

    def make_client(protocol: str) -> Client:
        client = served.client(protocol, timeout=DEADLINE_S, retries=4, backoff=0.5)
        counting = CountingTransport(client._transport, failed_attempts, lock)
        client._transport = counting  # observe the attempts behind the client's retries
        transports.append(counting)
        return client

    stop = threading.Event()
    out: dict[str, LoadResult] = {}
    ops = mixed_operations(MLP_METHODS)
    loader = threading.Thread(
        target=lambda: out.update(
            r=run_load(make_client, served.model, images(8), ops, clients=8, duration_s=180.0, stop=stop)
        ),
        daemon=True,
    )
    (old,) = served.worker_pids()
    loader.start()
    try:
        time.sleep(3.0)  # the worker is busy with batches now
        t_kill = time.monotonic()
        os.kill(old, signal.SIGKILL)
        (new,) = served.wait_workers(1, exclude={old}, timeout=120.0)
        recovery_s = time.monotonic() - t_kill
        time.sleep(3.0)  # and serves again
    finally:
        stop.set()
        loader.join(timeout=(DEADLINE_S + SLACK_S) * 5)
    assert not loader.is_alive(), "a client hung"
    result = out["r"]
    slowest_attempt = max(t.slowest for t in transports)
    report = {
        "killed_pid": old,
        "new_pid": new,
        "recovery_s": recovery_s,
        "load": result.as_dict(),
        "failed_attempts": failed_attempts,
        "slowest_attempt_s": slowest_attempt,
    }
    write_json(tmp_path / "fault_worker_kill.json", report)
    print(f"\nworker {old} killed -> worker {new} READY after {recovery_s:.1f} s; {result.summary()}")
    print(
        f"failed attempts (retried by the client): {len(failed_attempts)} "
        f"{sorted({k for k, _ in failed_attempts})}; slowest attempt {slowest_attempt:.1f} s"
    )

    assert new != old
    assert result.error_count == 0, result.error_samples  # every retry succeeded
    assert result.ok > 0
    assert failed_attempts, "the kill hit no request in flight"
    assert {kind for kind, _ in failed_attempts} == {"Unavailable"}, failed_attempts
    assert slowest_attempt < DEADLINE_S + SLACK_S


def test_server_restart_client_reconnects(served: ServedModel, tmp_path: Path) -> None:
    cfg = served.config
    image = images(1)[0]
    clients = {p: served.client(p, timeout=10.0, retries=0) for p in ("grpc", "http")}
    for c in clients.values():
        assert c.predict(served.model, image).top
    t0 = time.monotonic()
    assert srv.stop(cfg.state_dir)
    stopped_s = time.monotonic() - t0
    for protocol, c in clients.items():
        t1 = time.monotonic()
        with pytest.raises(Unavailable):
            c.predict(served.model, image)
        assert time.monotonic() - t1 < 10.0 + SLACK_S, f"{protocol} call to a stopped server hung"
    t2 = time.monotonic()
    srv.start(cfg, timeout=240)
    restart_s = time.monotonic() - t2
    served.worker_pids()  # remember the new worker for the cleanup
    answered: dict[str, float] = {}
    for protocol, c in clients.items():
        c.retries, c.backoff = 5, 0.2  # the gRPC channel may still be in its reconnect backoff
        t3 = time.monotonic()
        assert c.predict(served.model, image).top
        explanation = c.explain(served.model, image, ["gradient"])
        assert explanation.heatmaps
        answered[protocol] = time.monotonic() - t3
        c.close()
    write_json(
        tmp_path / "fault_restart.json",
        {"stop_s": stopped_s, "restart_s": restart_s, "first_answer_s": answered},
    )
    print(
        f"\nserver stopped in {stopped_s:.1f} s, restarted (READY) in {restart_s:.1f} s; "
        f"first answers after restart: {answered}"
    )
