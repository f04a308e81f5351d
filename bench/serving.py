"""Serving overheads: what TorchServe + the wire cost on top of the in-process explain service.

Issue-14 figures, all measured in the same run and on the digits SimpleNet-310k (1x28x28 PNG, random
weights, archived with the ``xai archive`` defaults but ``batchSize`` 16), next to a *trivial
TorchServe model* (a handler that answers empty bytes: the floor of TorchServe's frontend + worker
round trip on this machine, reached through the same gRPC client). The trivial model is a fair floor:
started by the same ``xai serve`` (same config.properties, JVM flags, log configuration, token auth)
and archived with the same ``batchSize``/``maxBatchDelay``/workers as ours; both frontends get the same
warm-up calls (the JVM's JIT makes its first few hundred requests several times slower) before anything
is timed.

* ``xai serve`` to every model READY (a subprocess, as a user runs it), target <= 8 s, beside the
  same command for the trivial model;
* gRPC ``explain(gradient)`` B=1, sequential: served p50 minus the in-process p50 of the same request
  through ``ExplainService.handle``, target <= 8 ms (calls interleaved round-robin);
* gRPC ``predict`` B=1 p50, target <= 10 ms, with the in-process forward and the trivial model;
* 16 closed-loop gRPC clients in their own process (``bench/loadproc.py``), gradient: served items/s
  as a share of in-process batched items/s (``handle`` of 16 requests), target >= 0.7x.

Full mode adds the ResNet-18 224x224 latency rows (gRPC and HTTP minus in-process).
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

SUITE = "serving"
METHOD = "gradient"
CONCURRENCY = 16
DIGITS_MODEL = "simplenet_digits"
TRIVIAL_MODEL = "trivial"
ROOT = Path(__file__).resolve().parents[1]

# quick / full: calls each frontend answers before anything is timed (with C1 only, its per-request
# cost settles after several hundred; bench/where_time_goes.md)
WARMUP_CALLS = {True: 400, False: 1000}

# the peer: a TorchServe handler that does nothing (one class, as TorchServe requires)
_TRIVIAL_HANDLER = '''class TrivialHandler:
    """Answers every request of a batch with empty bytes (an empty, OK ExplainResponse)."""

    def initialize(self, context):
        self.initialized = True

    def handle(self, data, context):
        return [b"" for _ in data]
'''


def _service(
    model_name: str,
    kwargs: dict[str, Any],
    input_shape: list[int],
    mean: list[float],
    std: list[float],
    num_classes: int,
) -> Any:
    import torch

    from xai_serve.models import ModelCard, canonicalise, create_model
    from xai_serve.serving.service import ExplainService

    torch.manual_seed(0)
    model = canonicalise(create_model(model_name, **kwargs)).eval()
    card = ModelCard(
        model=model_name,
        model_kwargs=kwargs,
        dataset="synthetic",
        input_shape=input_shape,
        mean=mean,
        std=std,
        labels=[f"class_{i}" for i in range(num_classes)],
    )
    return ExplainService("in-process", model, card)


def _resnet_latency_rows(quick: bool) -> list[Measurement]:
    from xai_client.requests import build_request

    from bench import servers

    running = servers.resnet18()
    image = servers.test_image(224)
    service = _service(
        "resnet18", {"num_classes": 1000}, [3, 224, 224], servers.IMAGENET_MEAN, servers.IMAGENET_STD, 1000
    )
    request = build_request(image, methods=[METHOD])
    n = 8 if quick else 30
    case = "resnet18 224x224 PNG, gradient, B=1"
    rows: list[Measurement] = []
    in_process: list[float] = []
    served: dict[str, list[float]] = {"grpc": [], "http": []}
    overhead: dict[str, list[float]] = {"grpc": [], "http": []}
    clients = {p: running.client(p) for p in served}
    try:
        for c in clients.values():  # warm-up: first calls allocate
            c.send(servers.OURS, request)
        service.handle([request])
        for _ in range(n):
            t0 = time.perf_counter()
            (resp,) = service.handle([request])
            in_process.append(time.perf_counter() - t0)
            assert resp.status.code == 0, resp.status.message
            for p, c in clients.items():
                t0 = time.perf_counter()
                reply = c.send(servers.OURS, request)
                served[p].append(time.perf_counter() - t0)
                overhead[p].append(served[p][-1] - reply.timings.total_ms / 1e3)
    finally:
        for c in clients.values():
            c.close()
    base = "in-process ExplainService.handle"
    med, q1, q3 = summarise(in_process, 1e3)
    rows.append(Measurement(SUITE, case, base, "ms", med, q1, q3, n=n))
    for p, samples in served.items():
        med_p, q1_p, q3_p = summarise(samples, 1e3)
        rows.append(
            Measurement(SUITE, case, f"served {p} end-to-end", "ms", med_p, q1_p, q3_p, n=n, baseline=base)
        )
        o_med, o_q1, o_q3 = summarise(overhead[p], 1e3)
        rows.append(
            Measurement(
                SUITE,
                case,
                f"{p} overhead per call (end-to-end - worker's handle time)",
                "ms",
                o_med,
                o_q1,
                o_q3,
                n=n,
            )
        )
        rows.append(
            Measurement(
                SUITE,
                case,
                f"{p} served p50 - in-process p50",
                "ms",
                med_p - med,
                n=n,
                extra={"served_p50_ms": med_p, "in_process_p50_ms": med},
            )
        )
    return rows


def _progress(text: str) -> None:
    print(f"[bench] serving: {text}", file=sys.stderr, flush=True)


def _build_stores(root: Path) -> tuple[Path, Path, Path]:
    """(digits store, trivial store, digits PNG)."""
    import io

    import numpy as np
    import yaml
    from PIL import Image

    from xai_serve.serving.archive import ArchiveOptions, _archiver, build_archive
    from xai_serve.testing import write_checkpoint

    ckpt = write_checkpoint(root / "ckpt", mean=(0.5,), std=(0.25,))  # random SimpleNet-310k, seed 0
    digits_store = root / "store_digits"
    # `xai archive` defaults (max batch delay, threads), batchSize = the number of clients
    options = ArchiveOptions(batch_size=CONCURRENCY, cache_mib=0)  # repeats computed, not cached
    build_archive(ckpt, DIGITS_MODEL, store=digits_store, options=options)
    trivial_store = root / "store_trivial"
    trivial_store.mkdir()
    handler = root / "trivial_handler.py"
    handler.write_text(_TRIVIAL_HANDLER)
    # the same batching as ours: a lone request waits maxBatchDelay in both
    trivial_config = root / "trivial-config.yaml"
    trivial_config.write_text(
        yaml.safe_dump(
            {
                "minWorkers": options.workers,
                "maxWorkers": options.workers,
                "batchSize": options.batch_size,
                "maxBatchDelay": options.max_batch_delay_ms,
                "responseTimeout": options.response_timeout_s,
            }
        )
    )
    subprocess.run(
        [
            *_archiver(),
            "--model-name",
            TRIVIAL_MODEL,
            "--version",
            "1.0",
            "--handler",
            str(handler),
            "--config-file",
            str(trivial_config),
            "--export-path",
            str(trivial_store),
            "--force",
        ],
        check=True,
        capture_output=True,
        text=True,
    )
    buf = io.BytesIO()
    Image.fromarray((np.random.default_rng(0).random((28, 28)) * 255).astype(np.uint8)).save(
        buf, format="PNG"
    )
    png = root / "digit.png"
    png.write_bytes(buf.getvalue())
    return digits_store, trivial_store, png


def _xai_serve(store: Path, state: Path, model: str) -> tuple[float, Any]:
    """Seconds of ``xai serve MODEL`` (a subprocess, returns once every model is READY) and the config."""
    from xai_serve.serving import server as srv

    cfg = srv.ServerConfig.on_free_ports(store, [model], state)
    xai = Path(sys.executable).parent / "xai"
    cmd = [str(xai), "serve", model, "--store", str(store), "--state-dir", str(state), "--timeout", "300"]
    for option, port in [
        ("--inference-port", cfg.inference_port),
        ("--management-port", cfg.management_port),
        ("--metrics-port", cfg.metrics_port),
        ("--grpc-port", cfg.grpc_port),
        ("--grpc-management-port", cfg.grpc_management_port),
    ]:
        cmd += [option, str(port)]
    t0 = time.perf_counter()
    done = subprocess.run(cmd, capture_output=True, text=True, check=False)
    seconds = time.perf_counter() - t0
    if done.returncode != 0:
        raise RuntimeError(f"xai serve failed: {done.stdout[-2000:]} {done.stderr[-2000:]}")
    cfg = cfg.resolved()
    return seconds, cfg


def _worker_load_ms(state: Path) -> float | None:
    """WorkerLoadTime (ms) from TorchServe's metrics log, when present."""
    import re

    for log in (state / "logs").glob("*.log"):
        m = re.findall(r"WorkerLoadTime\.Milliseconds:(\d+)", log.read_text(errors="replace"))
        if m:
            return float(m[-1])
    return None


def _cpu_seconds(cfg: Any) -> dict[str, float]:
    """CPU seconds (user + system) used so far by the frontend (Java) and by its workers."""
    import psutil

    from xai_serve.serving import server as srv

    pid = srv.read_pid(cfg.state_dir)
    if pid is None:
        return {}
    java = psutil.Process(pid)
    out = {"java": sum(java.cpu_times()[:2]), "workers": 0.0}
    for child in java.children(recursive=True):
        try:
            out["workers"] += sum(child.cpu_times()[:2])
        except psutil.Error:
            continue
    return out


def _loadproc(cfg: Any, model: str, png: Path, methods: list[str], duration: float) -> dict[str, Any]:
    cmd = [
        sys.executable,
        "-m",
        "bench.loadproc",
        "--address",
        cfg.grpc_address,
        "--key-file",
        str(cfg.key_file),
        "--model",
        model,
        "--png",
        str(png),
        "--clients",
        str(CONCURRENCY),
        "--duration",
        str(duration),
    ]
    for m in methods:
        cmd += ["--method", m]
    cpu0 = _cpu_seconds(cfg)
    done = subprocess.run(
        cmd,
        capture_output=True,
        text=True,
        check=False,
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    lines = [line for line in done.stdout.splitlines() if line.startswith("{")]
    if not lines:
        raise RuntimeError(f"load generator failed: {done.stderr[-2000:]}")
    out = json.loads(lines[-1])
    cpu1 = _cpu_seconds(cfg)
    for k in cpu1:  # CPU per answered request (the load generator's warm-up calls included)
        out[f"{k}_cpu_ms_per_item"] = (cpu1[k] - cpu0.get(k, 0.0)) * 1e3 / max(out["requests"], 1)
    if out["errors"]:
        raise RuntimeError(f"{out['errors']} served requests failed, e.g. {out['first_error']}")
    return out


def _batch_seconds(service: Any, batch: list[Any], reps: int) -> list[float]:
    """Seconds of ``reps`` in-process ``handle`` calls of ``batch``, after one warm-up call."""
    service.handle(batch)
    times = []
    for _ in range(reps):
        t = time.perf_counter()
        service.handle(batch)
        times.append(time.perf_counter() - t)
    return times


def _digits_rows(quick: bool) -> list[Measurement]:
    import torch
    from xai_client import Client
    from xai_client.requests import build_request

    from xai_serve.serving import server as srv

    rows: list[Measurement] = []
    root = Path(tempfile.mkdtemp(prefix="xai-bench-serving-"))
    digits_store, trivial_store, png = _build_stores(root)
    started: list[Path] = []
    try:
        # 1. cold start: `xai serve` until READY, the trivial model first (the floor), then ours
        case = "xai serve to every model READY, 1 worker"
        t_trivial, cfg_t = _xai_serve(trivial_store, root / "state_trivial", TRIVIAL_MODEL)
        started.append(cfg_t.state_dir)
        t_ours, cfg = _xai_serve(digits_store, root / "state_digits", DIGITS_MODEL)
        started.append(cfg.state_dir)
        floor = "trivial TorchServe model (empty handler)"
        rows.append(
            Measurement(
                SUITE, case, floor, "s", t_trivial, extra={"worker_load_ms": _worker_load_ms(cfg_t.state_dir)}
            )
        )
        rows.append(
            Measurement(
                SUITE,
                case,
                "digits SimpleNet archive (ours)",
                "s",
                t_ours,
                baseline=floor,
                target="<= 8 s",
                extra={"worker_load_ms": _worker_load_ms(cfg.state_dir)},
            )
        )

        _progress(f"cold start: trivial {t_trivial:.1f} s, ours {t_ours:.1f} s")
        # 2. B=1 latency, calls interleaved: in-process handle / served explain / served predict / trivial
        service = _service("simplenet_310k", {"num_classes": 10}, [1, 28, 28], [0.5], [0.25], 10)
        explain_req = build_request(png.read_bytes(), methods=[METHOD])
        predict_req = build_request(png.read_bytes())
        ours = Client(cfg.grpc_address, "grpc", key_file=cfg.key_file, timeout=120, retries=0)
        trivial = Client(cfg_t.grpc_address, "grpc", key_file=cfg_t.key_file, timeout=120, retries=0)
        from xai_serve.serving.inputs import decode_input

        x = decode_input(predict_req.input, service.card).x[None]

        def forward() -> None:
            with torch.inference_mode():
                service.model(x)

        calls = {
            "in-process forward (inference_mode)": forward,
            "in-process ExplainService.handle predict": lambda: service.handle([predict_req]),
            "in-process ExplainService.handle explain(gradient)": lambda: service.handle([explain_req]),
            "served gRPC predict": lambda: ours.send(DIGITS_MODEL, predict_req),
            "served gRPC explain(gradient)": lambda: ours.send(DIGITS_MODEL, explain_req),
            floor + ", gRPC": lambda: trivial.send(TRIVIAL_MODEL, predict_req),
        }
        samples: dict[str, list[float]] = {k: [] for k in calls}
        for fn in calls.values():  # first calls allocate
            for _ in range(3):
                fn()
        # the same number of calls to both frontends (their JIT warms with the calls), interleaved
        warm = [calls["served gRPC predict"], calls["served gRPC explain(gradient)"]]
        warm += [calls[floor + ", gRPC"]] * len(warm)
        for _ in range(WARMUP_CALLS[quick] // 2):
            for fn in warm:
                fn()
        for _ in range(30 if quick else 100):
            for name, fn in calls.items():
                t0 = time.perf_counter()
                fn()
                samples[name].append(time.perf_counter() - t0)
        ours.close()
        trivial.close()
        case = "digits SimpleNet 28x28 PNG, B=1, sequential"
        stats = {k: summarise(v, 1e3) for k, v in samples.items()}
        n = len(samples[floor + ", gRPC"])
        for name, (med, q1, q3) in stats.items():
            baseline = None
            target = None
            if name == "served gRPC predict":
                baseline, target = floor + ", gRPC", "<= 10 ms"
            elif name == "served gRPC explain(gradient)":
                baseline = "in-process ExplainService.handle explain(gradient)"
            elif name == "in-process ExplainService.handle predict":
                baseline = "in-process forward (inference_mode)"
            rows.append(
                Measurement(SUITE, case, name, "ms", med, q1, q3, n=n, baseline=baseline, target=target)
            )
        e_med = stats["served gRPC explain(gradient)"][0]
        i_med = stats["in-process ExplainService.handle explain(gradient)"][0]
        rows.append(
            Measurement(
                SUITE,
                case,
                "explain(gradient): served p50 - in-process p50",
                "ms",
                e_med - i_med,
                n=n,
                target="<= 8 ms",
                extra={
                    "served_p50_ms": e_med,
                    "in_process_p50_ms": i_med,
                    "trivial_p50_ms": stats[floor + ", gRPC"][0],
                },
            )
        )

        _progress("B=1 latency done")
        # 3. throughput: in-process batches of 16 vs 16 closed-loop clients in their own process
        case = f"digits SimpleNet 28x28 PNG, gradient, {CONCURRENCY} clients"
        batch = [explain_req] * CONCURRENCY
        times = _batch_seconds(service, batch, 5 if quick else 15)
        base = f"in-process batched (B={CONCURRENCY})"
        rows.append(
            Measurement(
                SUITE,
                case,
                base,
                "items/s",
                CONCURRENCY / statistics.median(times),
                n=len(times),
                extra={"torch_threads": torch.get_num_threads()},
            )
        )
        from xai_serve.serving.threads import worker_threads

        threads = torch.get_num_threads()
        torch.set_num_threads(worker_threads())  # what the served worker runs with (cores - 1)
        try:
            times_w = _batch_seconds(service, batch, 5 if quick else 15)
        finally:
            torch.set_num_threads(threads)
        rows.append(
            Measurement(
                SUITE,
                case,
                f"in-process batched (B={CONCURRENCY}), {worker_threads()} torch thread(s) like the worker",
                "items/s",
                CONCURRENCY / statistics.median(times_w),
                n=len(times_w),
                baseline=base,
            )
        )
        duration = 6.0 if quick else 20.0
        load = _loadproc(cfg, DIGITS_MODEL, png, [METHOD], duration)
        rows.append(
            Measurement(
                SUITE,
                case,
                f"served gRPC, {CONCURRENCY} clients in their own process (batchSize {CONCURRENCY})",
                "items/s",
                load["items_per_s"],
                n=load["requests"],
                baseline=base,
                target=">= 0.7x",
                extra=load,
            )
        )
        peer = _loadproc(cfg_t, TRIVIAL_MODEL, png, [], min(duration, 6.0))
        rows.append(
            Measurement(
                SUITE,
                case,
                f"{floor}, {CONCURRENCY} clients (frontend ceiling)",
                "items/s",
                peer["items_per_s"],
                n=peer["requests"],
                extra=peer,
            )
        )
        _explain_targets(rows, floor)
    finally:
        for state in started:
            srv.stop(state)
    return rows


def _explain_targets(rows: list[Measurement], floor: str) -> None:
    """``extra.reason`` of each target row: the figure beside the peers that bound it."""
    by = {r.name: r for r in rows}

    def get(name: str) -> float:
        return by[name].median if name in by else float("nan")

    trivial_ms = get(floor + ", gRPC")
    for r in rows:
        if r.target is None:
            continue
        if r.unit == "s":
            r.extra["reason"] = (
                f"{r.median:.1f} s against {get(floor):.1f} s for an empty handler on the same machine; "
                "the difference is the worker's imports (torch, the engine) and model load"
            )
        elif r.name == "served gRPC predict":
            r.extra["reason"] = (
                f"p50 {r.median:.1f} ms = TorchServe's floor here {trivial_ms:.1f} ms (empty handler, same "
                "server config and batch settings, same client, warmed frontend; includes the "
                "maxBatchDelay a lone request waits) + the worker's "
                f"in-process handle {get('in-process ExplainService.handle predict'):.1f} ms (of which the "
                f"forward pass {get('in-process forward (inference_mode)'):.1f} ms)"
            )
        elif r.unit == "ms":
            r.extra["reason"] = (
                f"served {r.extra['served_p50_ms']:.1f} ms - in-process "
                f"{r.extra['in_process_p50_ms']:.1f} ms; TorchServe's floor here {trivial_ms:.1f} ms "
                "(empty handler, same config and client)"
            )
        elif r.unit == "items/s":
            ceiling = next((x.median for x in rows if x.name.endswith("(frontend ceiling)")), float("nan"))
            one = next((x.median for x in rows if "torch thread(s) like the worker" in x.name), float("nan"))
            r.extra["reason"] = (
                f"mean batch {r.extra.get('mean_batch_size', 0):.1f} of {CONCURRENCY}; CPU per item: worker "
                f"{r.extra.get('workers_cpu_ms_per_item', float('nan')):.1f} ms, TorchServe's frontend "
                f"{r.extra.get('java_cpu_ms_per_item', float('nan')):.1f} ms; the worker runs 1 torch "
                f"thread beside the frontend (in-process at that setting: {one:.0f} items/s); "
                f"TorchServe's frontend alone (empty handler) sustains {ceiling:.0f} items/s with these "
                "clients"
            )


def run(quick: bool) -> list[Measurement]:
    rows = _digits_rows(quick)  # first: its cold start should not share the CPU
    if not quick:
        rows += _resnet_latency_rows(quick)
    return rows


if __name__ == "__main__":
    import argparse

    parser = argparse.ArgumentParser()
    parser.add_argument("--full", action="store_true")
    args = parser.parse_args()
    try:
        for r in run(quick=not args.full):
            print(
                f"{r.case} | {r.name}: {r.median:.2f} {r.unit}" + (f" target {r.target}" if r.target else "")
            )
    finally:
        from bench import servers

        servers.stop_all()
