"""The two serving engines side by side on the digits archive: TorchServe (its gRPC API, the default)
and KServe's model server (``xai serve --engine kserve``, the Open Inference Protocol v2 over gRPC).

Per engine, on the digits SimpleNet-310k (1x28x28 PNG, random weights, ``xai archive`` defaults but
``batchSize`` 16; the kserve engine batches the requests waiting while it is busy, up to 16 rows):

* ``predict`` B=1 p50, sequential (calls interleaved round-robin with the in-process service);
* ``explain(gradient)`` B=1: served p50 minus the in-process p50 of ``ExplainService.handle`` (goal for
  the kserve engine <= 3 ms);
* 16 closed-loop clients in 4 processes of 4 (``bench/loadproc.py``), gradient: served items/s as a share
  of in-process batched items/s (``handle`` of 16 requests; goal for the kserve engine >= 0.7x).

In-process figures run with the served workers' torch thread count (``serving.threads.worker_threads``).
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from bench.common import Measurement, summarise

SUITE = "engines"
METHOD = "gradient"
MODEL = "simplenet_digits"
CLIENTS, PROCESSES = 16, 4
ROOT = Path(__file__).resolve().parents[1]
WARMUP_CALLS = {True: 300, False: 1000}


def _load(address: str, protocol: str, key_file: Path, png: Path, duration: float) -> dict[str, Any]:
    """16 closed-loop clients in 4 load-generator processes at once; summed items/s."""
    cmd = [sys.executable, "-m", "bench.loadproc", "--address", address, "--key-file", str(key_file)]
    cmd += ["--model", MODEL, "--png", str(png), "--clients", str(CLIENTS // PROCESSES)]
    cmd += ["--duration", str(duration), "--method", METHOD, "--protocol", protocol]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])}
    procs = [
        subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=ROOT, env=env)
        for _ in range(PROCESSES)
    ]
    outs = []
    for p in procs:
        stdout, stderr = p.communicate(timeout=600)
        lines = [line for line in stdout.splitlines() if line.startswith("{")]
        if not lines:
            raise RuntimeError(f"load generator failed: {stderr[-2000:]}")
        outs.append(json.loads(lines[-1]))
    errors = sum(o["errors"] for o in outs)
    if errors:
        raise RuntimeError(f"{errors} served requests failed, e.g. {[o['first_error'] for o in outs]}")
    return {
        "items_per_s": sum(o["items_per_s"] for o in outs),
        "requests": sum(o["requests"] for o in outs),
        "p50_ms": statistics.median(o["p50_ms"] for o in outs),
        "mean_batch_size": statistics.fmean(o["mean_batch_size"] for o in outs),
    }


def run(quick: bool) -> list[Measurement]:
    import torch
    from xai_client import Client
    from xai_client.requests import build_request

    from bench.serving import _batch_seconds, _build_stores, _service
    from xai_serve.serving import server as srv
    from xai_serve.serving.threads import worker_threads
    from xai_serve.serving.v2 import kserve_engine

    torch.set_num_threads(worker_threads())  # in process with the served workers' thread count
    root = Path(tempfile.mkdtemp(prefix="xai-bench-engines-"))
    store, _trivial, png = _build_stores(root)
    service = _service("simplenet_310k", {"num_classes": 10}, [1, 28, 28], [0.5], [0.25], 10)
    explain_req = build_request(png.read_bytes(), methods=[METHOD])
    predict_req = build_request(png.read_bytes())
    rows: list[Measurement] = []
    ts = srv.start(srv.ServerConfig.on_free_ports(store, [MODEL], root / "state_ts"), timeout=300).config
    try:
        ks = kserve_engine.start(
            kserve_engine.KServeConfig.on_free_ports(store, [MODEL], root / "state_ks"), timeout=300
        ).config
        try:
            engines = {
                "TorchServe (gRPC)": (ts.grpc_address, "grpc", ts.key_file),
                "kserve (v2 gRPC)": (ks.grpc_address, "v2", ks.key_file),
            }
            clients = {
                k: Client(a, p, key_file=f, timeout=120, retries=0) for k, (a, p, f) in engines.items()
            }
            calls = {"in-process explain(gradient)": lambda: service.handle([explain_req])}
            for k, c in clients.items():
                calls[f"{k} predict"] = lambda c=c: c.send(MODEL, predict_req)
                calls[f"{k} explain(gradient)"] = lambda c=c: c.send(MODEL, explain_req)
            for _ in range(WARMUP_CALLS[quick] // 2):  # TorchServe's JIT warms with calls
                for fn in calls.values():
                    fn()
            samples: dict[str, list[float]] = {k: [] for k in calls}
            for _ in range(30 if quick else 100):
                for name, fn in calls.items():
                    t0 = time.perf_counter()
                    fn()
                    samples[name].append(time.perf_counter() - t0)
            for c in clients.values():
                c.close()
            stats = {k: summarise(v, 1e3) for k, v in samples.items()}
            n = len(samples["in-process explain(gradient)"])
            in_p50 = stats["in-process explain(gradient)"][0]
            case = "digits SimpleNet 28x28 PNG, B=1, sequential"
            rows.append(
                Measurement(
                    SUITE,
                    case,
                    "in-process explain(gradient)",
                    "ms",
                    *stats["in-process explain(gradient)"],
                    n=n,
                )
            )
            for k in engines:
                goal = k.startswith("kserve")
                rows.append(Measurement(SUITE, case, f"{k} predict p50", "ms", *stats[f"{k} predict"], n=n))
                served = stats[f"{k} explain(gradient)"][0]
                rows.append(
                    Measurement(
                        SUITE,
                        case,
                        f"{k} explain(gradient): served p50 - in-process p50",
                        "ms",
                        served - in_p50,
                        n=n,
                        target="<= 3 ms" if goal else None,
                        extra={"served_p50_ms": served, "in_process_p50_ms": in_p50},
                    )
                )
            case = f"digits SimpleNet 28x28 PNG, gradient, {CLIENTS} clients in {PROCESSES} processes"
            batch = [explain_req] * CLIENTS
            times = _batch_seconds(service, batch, 5 if quick else 15)
            base = f"in-process batched (B={CLIENTS})"
            rows.append(
                Measurement(SUITE, case, base, "items/s", CLIENTS / statistics.median(times), n=len(times))
            )
            duration = 6.0 if quick else 20.0
            for k, (address, protocol, key_file) in engines.items():
                load = _load(address, protocol, key_file, png, duration)
                rows.append(
                    Measurement(
                        SUITE,
                        case,
                        f"{k}, {CLIENTS} clients",
                        "items/s",
                        load["items_per_s"],
                        n=load["requests"],
                        baseline=base,
                        target=">= 0.7x" if k.startswith("kserve") else None,
                        extra=load,
                    )
                )
        finally:
            kserve_engine.stop(root / "state_ks")
    finally:
        srv.stop(root / "state_ts")
    return rows
