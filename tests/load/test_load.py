"""Sustained load against a real TorchServe: 16 closed-loop clients over gRPC and HTTP with mixed
methods for 60 s (XAI_LOAD_SECONDS), zero errors, latency percentiles reported; worker RSS growth
under 5 % across 10,000 requests (XAI_LOAD_REQUESTS) after a warm-up, and no worker restarted.

The figures are printed and written to ``load.json`` in the test's tmp dir (``bench/load.py`` runs
the same load as a benchmark for BENCHMARKS.md).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from load_support import MLP_METHODS, ServedModel, env_float, env_int, images, rss_mib, write_json
from xai_client.client import Client

from xai_serve.serving.loadgen import mixed_operations, run_load

pytestmark = [pytest.mark.slow, pytest.mark.integration]

SERVE_OPTIONS = {"batch_size": 8, "max_batch_delay_ms": 5, "workers": 1}
SECONDS = env_float("XAI_LOAD_SECONDS", 60.0)
CLIENTS = env_int("XAI_LOAD_CLIENTS", 16)
RSS_REQUESTS = env_int("XAI_LOAD_REQUESTS", 10_000)
WARMUP_REQUESTS = 400
MAX_RSS_GROWTH = 0.05


def test_sustained_mixed_load_has_no_errors_and_no_worker_memory_growth(
    served: ServedModel, tmp_path: Path
) -> None:
    ops = mixed_operations(MLP_METHODS)
    imgs = images(16)

    def make_client(protocol: str) -> Client:
        return served.client(protocol, timeout=30.0, retries=0)  # any error counts

    # warm-up: every method and batch size once, allocator pools filled
    warm = run_load(
        make_client, served.model, imgs, ops, clients=CLIENTS, duration_s=None, total_requests=WARMUP_REQUESTS
    )
    assert warm.error_count == 0, warm.error_samples
    pids = served.worker_pids()
    rss_before = rss_mib(pids)

    sustained = run_load(make_client, served.model, imgs, ops, clients=CLIENTS, duration_s=SECONDS, seed=1)
    topup = None
    if sustained.total < RSS_REQUESTS:  # keep going until the RSS window has seen enough requests
        topup = run_load(
            make_client,
            served.model,
            imgs,
            ops,
            clients=CLIENTS,
            duration_s=None,
            total_requests=RSS_REQUESTS - sustained.total,
            seed=2,
        )
    rss_after = rss_mib(pids)
    pids_after = served.worker_pids()

    measured = sustained.total + (topup.total if topup else 0)
    growth = {pid: rss_after[pid] / rss_before[pid] - 1.0 for pid in rss_before if pid in rss_after}
    report = {
        "clients": CLIENTS,
        "seconds": SECONDS,
        "operations": [op.name for op in ops],
        "sustained": sustained.as_dict(),
        "rss_window_requests": measured,
        "rss_before_mib": rss_before,
        "rss_after_mib": rss_after,
        "rss_growth": growth,
        "topup": topup.as_dict() if topup else None,
    }
    path = write_json(tmp_path / "load.json", report)
    print(f"\nsustained: {sustained.summary()}")
    for name, op in sustained.operations.items():
        lat = op["latency"]
        print(f"  {name:28s} ok {op['ok']:6d}  p50 {lat['p50_ms']:7.1f}  p99 {lat['p99_ms']:7.1f} ms")
    percent = {p: round(g * 100, 2) for p, g in growth.items()}
    print(f"worker RSS growth over {measured} requests: {json.dumps(percent)} %")
    print(f"figures: {path}")

    assert sustained.error_count == 0, sustained.error_samples
    assert topup is None or topup.error_count == 0, topup.error_samples
    assert set(sustained.operations) == {op.name for op in ops}, "every operation was exercised"
    assert measured >= RSS_REQUESTS
    assert pids_after == pids, f"workers restarted during the load: {pids} -> {pids_after}"
    assert set(growth) == set(pids)
    for pid, g in growth.items():
        before, after = rss_before[pid], rss_after[pid]
        assert g < MAX_RSS_GROWTH, f"worker {pid} RSS grew {g:.1%} ({before:.0f} -> {after:.0f} MiB)"
