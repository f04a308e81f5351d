"""Serving overheads: what TorchServe + the wire cost on top of the in-process explain service.

Three figures (issue 4): the end-to-end gRPC latency of one ResNet-18 224x224 explanation minus the
in-process latency of the same request through ``ExplainService.handle`` (same decode, predict,
explain and encode code), p50 target <= 10 ms. On a shared 2-core machine the compute time of two
separate runs varies by more than the overhead, so the overhead is taken per call: end-to-end time
minus the ``ExplainService.handle`` time the worker measured for that very call (its
``timings.total_ms``); the difference of the two medians (served vs in-process, calls interleaved)
is kept as a row too. The
throughput of the digits SimpleNet with dynamic batching (batchSize 16, maxBatchDelay 50 ms) under
16 concurrent gRPC clients as a share of in-process batched throughput (batches of 16), target
>= 70 %; and the cold start from launching TorchServe to the first explanation answered, target
<= 15 s. The method is ``gradient`` throughout (one forward + one backward pass).
"""

from __future__ import annotations

import statistics
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

from bench.common import Measurement, summarise

SUITE = "serving"
METHOD = "gradient"
CONCURRENCY = 16
DIGITS_MODEL = "simplenet_digits"


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


def _latency_rows(quick: bool) -> list[Measurement]:
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
                target="<= 10 ms" if p == "grpc" else None,
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


def _build_digits(store: Path) -> None:
    import torch

    from xai_serve.models import ModelCard, create_model
    from xai_serve.serving.archive import ArchiveOptions, build_archive

    ckpt = store.parent / "ckpt"
    ckpt.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(0)
    torch.save(create_model("simplenet_310k", num_classes=10).state_dict(), ckpt / "best.pt")
    ModelCard(
        model="simplenet_310k",
        model_kwargs={"num_classes": 10},
        dataset="digits",
        input_shape=[1, 28, 28],
        mean=[0.5],
        std=[0.25],
        labels=[str(i) for i in range(10)],
    ).save(ckpt / "model.json")
    build_archive(
        ckpt, DIGITS_MODEL, store=store, options=ArchiveOptions(batch_size=CONCURRENCY, max_batch_delay_ms=50)
    )


def _digit_png() -> bytes:
    import io

    import numpy as np
    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray((np.random.default_rng(0).random((28, 28)) * 255).astype(np.uint8)).save(
        buf, format="PNG"
    )
    return buf.getvalue()


def _throughput_and_cold_start(quick: bool) -> list[Measurement]:
    from xai_client import Client
    from xai_client.requests import build_request

    from xai_serve.serving import server as srv

    png = _digit_png()
    request = build_request(png, methods=[METHOD])
    rows: list[Measurement] = []
    root = Path(tempfile.mkdtemp(prefix="xai-bench-serving-"))
    _build_digits(root / "model_store")
    ports = srv.free_ports(5)
    cfg = srv.ServerConfig(
        model_store=root / "model_store",
        models=[DIGITS_MODEL],
        state_dir=root / "state",
        inference_port=ports[0],
        management_port=ports[1],
        metrics_port=ports[2],
        grpc_port=ports[3],
        grpc_management_port=ports[4],
    )
    try:
        t0 = time.perf_counter()
        srv.start(cfg, timeout=300)
        t_ready = time.perf_counter() - t0
        client = Client(cfg.grpc_address, "grpc", key_file=cfg.key_file, timeout=120, retries=0)
        client.send(DIGITS_MODEL, request)
        cold = time.perf_counter() - t0
        rows.append(
            Measurement(
                SUITE,
                "digits SimpleNet, 1 worker, 2 cores",
                "cold start to first explanation",
                "s",
                cold,
                target="<= 15 s",
                extra={"all_workers_ready_s": t_ready},
            )
        )

        # in-process batched throughput (batches of CONCURRENCY through the same service code)
        service = _service("simplenet_310k", {"num_classes": 10}, [1, 28, 28], [0.5], [0.25], 10)
        batch = [request] * CONCURRENCY
        times = []
        service.handle(batch)
        for _ in range(5 if quick else 15):
            t = time.perf_counter()
            service.handle(batch)
            times.append(time.perf_counter() - t)
        in_rate = CONCURRENCY / statistics.median(times)
        case = f"digits SimpleNet 28x28 PNG, gradient, {CONCURRENCY} clients"
        base = f"in-process batched (B={CONCURRENCY})"
        rows.append(Measurement(SUITE, case, base, "items/s", in_rate, n=len(times)))

        # served: CONCURRENCY closed-loop gRPC clients for a fixed time
        duration = 6.0 if quick else 20.0
        counts = [0] * CONCURRENCY
        errors: list[str] = []
        batch_sizes: list[int] = []
        stop_at = [0.0]
        start_evt = threading.Event()

        def loop(i: int) -> None:
            start_evt.wait()
            while time.perf_counter() < stop_at[0]:
                try:
                    resp = client.send(DIGITS_MODEL, request)
                    counts[i] += 1
                    batch_sizes.append(resp.timings.batch_size)
                except Exception as exc:
                    errors.append(repr(exc))
                    return

        for _ in range(CONCURRENCY):  # warm the worker at full batch size
            client.send(DIGITS_MODEL, request)
        threads = [threading.Thread(target=loop, args=(i,)) for i in range(CONCURRENCY)]
        for th in threads:
            th.start()
        t = time.perf_counter()
        stop_at[0] = t + duration
        start_evt.set()
        for th in threads:
            th.join()
        elapsed = time.perf_counter() - t
        client.close()
        if errors:
            raise RuntimeError(f"{len(errors)} served requests failed, e.g. {errors[0]}")
        served_rate = sum(counts) / elapsed
        rows.append(
            Measurement(
                SUITE,
                case,
                f"served gRPC, dynamic batching (batchSize {CONCURRENCY}, 50 ms)",
                "items/s",
                served_rate,
                n=sum(counts),
                baseline=base,
                target=">= 0.7x",
                extra={
                    "mean_batch_size": statistics.fmean(batch_sizes) if batch_sizes else 0.0,
                    "duration_s": elapsed,
                },
            )
        )
    finally:
        srv.stop(cfg.state_dir)
    return rows


def run(quick: bool) -> list[Measurement]:
    rows = _throughput_and_cold_start(quick)  # first: its cold start should not share the CPU
    rows += _latency_rows(quick)
    return rows


if __name__ == "__main__":
    import argparse

    parser = argparse.ArgumentParser()
    parser.add_argument("--full", action="store_true")
    args = parser.parse_args()
    try:
        for r in run(quick=not args.full):
            print(
                f"{r.case} | {r.name}: {r.median:.2f} {r.unit}"
                + (f" (ratio {r.ratio:.2f})" if r.ratio else "")
                + (f" target {r.target}" if r.target else "")
            )
    finally:
        from bench import servers

        servers.stop_all()
