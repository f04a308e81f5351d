"""Live credentials: what monitoring costs a served request (issue 26).

One TorchServe serves three archives of the same digits SimpleNet-310k (1x28x28 PNG, random weights,
batchSize 4): live credentials off, at rate 0.01 and at rate 1.0 (every explanation checked in the
background: a 10-step MoRF/LeRF deletion curve, one extra explanation for the stability, the input
statistics). Sequential gRPC ``explain(gradient)`` B=1 requests, in blocks of 25 rotated over the three
models (same run, same warm-up), give each model's p50 and p99 latency; rows are ratios to monitoring
off. After the run the describe call's counts show how many explanations the rate-1.0 monitor checked
and dropped (its queue holds 16; a sample that does not fit is dropped, never waited for).
"""

from __future__ import annotations

import statistics
import tempfile
import time
from pathlib import Path

from bench.common import Measurement

SUITE = "live"
METHOD = "gradient"
RATES = {"live_off": 0.0, "live_001": 0.01, "live_1": 1.0}
BLOCK = 25
REQUESTS = {True: 300, False: 2000}  # per model
WARMUP = {True: 100, False: 400}


def _p(xs: list[float], q: float) -> float:
    s = sorted(xs)
    return s[min(len(s) - 1, round(q * (len(s) - 1)))]


def run(quick: bool) -> list[Measurement]:
    import io

    import numpy as np
    from PIL import Image

    from xai_serve.serving.archive import ArchiveOptions, build_archive
    from xai_serve.serving.live_monitor import MonitorConfig
    from xai_serve.serving.server import ServerConfig, start, stop
    from xai_serve.testing import write_checkpoint

    root = Path(tempfile.mkdtemp(prefix="xai-bench-live-"))
    ckpt = write_checkpoint(root / "ckpt")
    for name, rate in RATES.items():
        opts = ArchiveOptions(
            batch_size=4, max_batch_delay_ms=2, monitor=MonitorConfig(rate=rate), cache_mib=0
        )
        build_archive(ckpt, name, store=root / "store", options=opts)
    buf = io.BytesIO()
    Image.fromarray((np.random.default_rng(0).random((28, 28)) * 255).astype(np.uint8)).save(buf, "PNG")
    png = buf.getvalue()
    cfg = ServerConfig.on_free_ports(root / "store", list(RATES), root / "state")
    start(cfg, timeout=300)
    latencies: dict[str, list[float]] = {name: [] for name in RATES}
    try:
        with cfg.client("grpc", timeout=120) as c:
            for _ in range(WARMUP[quick] // BLOCK):
                for name in RATES:
                    for _ in range(BLOCK):
                        c.explain(name, png, METHOD)
            for _ in range(REQUESTS[quick] // BLOCK):
                for name in RATES:
                    for _ in range(BLOCK):
                        t0 = time.perf_counter()
                        c.explain(name, png, METHOD)
                        latencies[name].append((time.perf_counter() - t0) * 1e3)
            time.sleep(2)
            checked = c.live_credentials("live_1").methods.get(METHOD)
    finally:
        stop(cfg.state_dir)
    case = f"digits simplenet_310k {METHOD} B=1, sequential gRPC, blocks of {BLOCK}"
    rows = []
    for name, rate in RATES.items():
        xs = latencies[name]
        label = "monitoring off" if rate == 0 else f"monitoring rate {rate:g}"
        q = statistics.quantiles(xs, n=4)
        extra = {"rate": rate, "p99_ms": _p(xs, 0.99)}
        if rate == 1.0 and checked is not None:
            extra.update(checked=checked.samples, dropped=checked.dropped)
        rows.append(
            Measurement(
                SUITE,
                case,
                f"{label} p50",
                "ms",
                statistics.median(xs),
                q[0],
                q[2],
                len(xs),
                baseline=None if rate == 0 else "monitoring off p50",
                target=None if rate == 0 else "<= 1.1x",
                extra=extra,
            )
        )
        rows.append(
            Measurement(
                SUITE,
                case,
                f"{label} p99",
                "ms",
                _p(xs, 0.99),
                None,
                None,
                len(xs),
                baseline=None if rate == 0 else "monitoring off p99",
                extra=extra,
            )
        )
    return rows
