"""Closed-loop load generator run in its OWN process (``python -m bench.loadproc``), so that the
clients never share an interpreter (GIL, CPU accounting) with the benchmark that measures the server.

``CLIENTS`` threads each own one gRPC :class:`xai_client.Client` and send the same request (a PNG,
with ``--method`` or a prediction) as soon as the previous answer arrives, for ``--duration``
seconds after a warm-up. Prints one JSON object: requests, errors, elapsed seconds, items/s, latency
p50/p90 (ms) and the mean batch size the worker reported (``timings.batch_size``).
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import threading
import time
from pathlib import Path


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.loadproc")
    p.add_argument("--address", required=True)
    p.add_argument("--key-file", type=Path, required=True)
    p.add_argument("--model", required=True)
    p.add_argument("--png", type=Path, required=True)
    p.add_argument("--method", action="append", default=[])
    p.add_argument("--clients", type=int, default=16)
    p.add_argument("--duration", type=float, default=6.0)
    p.add_argument("--protocol", default="grpc", help="grpc (TorchServe) | v2 (the kserve engine)")
    args = p.parse_args(argv)

    from xai_client import Client
    from xai_client.requests import build_request

    request = build_request(args.png.read_bytes(), methods=args.method or None)
    clients = [
        Client(args.address, args.protocol, key_file=args.key_file, timeout=120, retries=0)
        for _ in range(args.clients)
    ]
    for c in clients:  # warm-up: channels, and the worker at full batch size
        c.send(args.model, request)
    latencies: list[list[float]] = [[] for _ in clients]
    batches: list[list[int]] = [[] for _ in clients]
    errors: list[str] = []
    start = threading.Event()
    stop_at = [0.0]

    def loop(i: int) -> None:
        start.wait()
        c = clients[i]
        while True:
            t0 = time.perf_counter()
            if t0 >= stop_at[0]:
                return
            try:
                resp = c.send(args.model, request)
            except Exception as exc:
                errors.append(repr(exc)[:300])
                return
            latencies[i].append(time.perf_counter() - t0)
            batches[i].append(resp.timings.batch_size)

    threads = [threading.Thread(target=loop, args=(i,), daemon=True) for i in range(args.clients)]
    for th in threads:
        th.start()
    t = time.perf_counter()
    stop_at[0] = t + args.duration
    start.set()
    for th in threads:
        th.join()
    elapsed = time.perf_counter() - t
    for c in clients:
        c.close()
    lat = sorted(x for xs in latencies for x in xs)
    sizes = [b for bs in batches for b in bs]
    n = len(lat)
    out = {
        "requests": n,
        "errors": len(errors),
        "first_error": errors[0] if errors else None,
        "elapsed_s": elapsed,
        "items_per_s": n / elapsed if elapsed > 0 else 0.0,
        "p50_ms": lat[n // 2] * 1e3 if n else None,
        "p90_ms": lat[int(n * 0.9)] * 1e3 if n else None,
        "mean_batch_size": statistics.fmean(sizes) if sizes else 0.0,
    }
    print(json.dumps(out))
    return 0 if not errors else 1


if __name__ == "__main__":
    sys.exit(main())
