"""Helpers of the load, fault and fuzz tests: environment knobs, a served test model on top of the
serving lifecycle API (``xai_serve.serving.server``), worker PIDs and RSS, result files."""

from __future__ import annotations

import json
import os
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import psutil
from xai_client.client import Client

from xai_serve.serving import server as srv

MODEL = "digits"
INPUT_SHAPE = [1, 28, 28]
# methods that apply to an MLP (Grad-CAM needs a convolution)
MLP_METHODS = ("gradient", "input_x_gradient", "guided_backprop", "lrp")


def env_int(name: str, default: int) -> int:
    return int(os.environ.get(name, default))


def env_float(name: str, default: float) -> float:
    return float(os.environ.get(name, default))


def images(n: int = 8, seed: int = 0) -> list[np.ndarray]:
    """Raw float32 [1,28,28] tensors in 0..1 (the client sends them as Tensor messages)."""
    rng = np.random.default_rng(seed)
    return [rng.random(INPUT_SHAPE, dtype=np.float32) for _ in range(n)]


@dataclass
class ServedModel:
    """A running TorchServe with one small random-weight digits model."""

    config: srv.ServerConfig
    model: str = MODEL
    seen_pids: set[int] = field(default_factory=set)  # every worker PID seen, for the cleanup

    def client(
        self, protocol: str = "grpc", *, timeout: float = 30.0, retries: int = 2, backoff: float = 0.2
    ) -> Client:
        client: Client = self.config.client(protocol, timeout=timeout, retries=retries, backoff=backoff)
        return client

    def workers(self) -> list[dict[str, Any]]:
        return [w for d in srv.model_status(self.config, self.model) for w in d.get("workers", [])]

    def worker_pids(self) -> list[int]:
        """PIDs of the model's READY workers, from the management API."""
        ready = [w for w in self.workers() if w.get("status") == "READY"]
        pids = sorted(int(w["pid"]) for w in ready if int(w["pid"]) > 0)
        self.seen_pids.update(pids)
        return pids

    def wait_workers(
        self, count: int, *, exclude: frozenset[int] | set[int] = frozenset(), timeout: float = 120.0
    ) -> list[int]:
        """Wait until ``count`` READY workers whose PIDs are not in ``exclude`` exist; return their PIDs."""
        deadline = time.monotonic() + timeout
        while True:
            try:
                pids = [p for p in self.worker_pids() if p not in exclude]
            except (srv.ServerError, OSError, ValueError):
                pids = []
            if len(pids) >= count:
                return pids
            if time.monotonic() > deadline:
                raise TimeoutError(f"no {count} new READY workers after {timeout} s: {self.workers()}")
            time.sleep(0.1)


def make_checkpoint(directory: Path, *, seed: int = 0) -> Path:
    """A checkpoint directory (model.json + best.pt) of a random-weight MLP for 1x28x28 digits (the
    shared writer, :func:`xai_serve.testing.write_checkpoint`)."""
    from xai_serve.testing import write_checkpoint

    kwargs: dict[str, Any] = {"input_shape": INPUT_SHAPE, "hidden": [128, 64]}
    return write_checkpoint(
        directory,
        model="mlp",
        model_kwargs=kwargs,
        input_shape=INPUT_SHAPE,
        mean=(0.5,),
        std=(0.25,),
        seed=seed,
    )


def server_config(root: Path, **overrides: Any) -> srv.ServerConfig:
    return srv.ServerConfig.on_free_ports(root / "model_store", [MODEL], root / "state", **overrides)


@contextmanager
def served_digits(
    root: Path,
    *,
    batch_size: int = 8,
    max_batch_delay_ms: int = 5,
    workers: int = 1,
    response_timeout_s: int = 60,
) -> Iterator[ServedModel]:
    """Archive the test model into ``root/model_store`` and serve it; stop the server by PID on exit
    (also when the body raises)."""
    from xai_serve.serving.archive import ArchiveOptions, build_archive

    ckpt = make_checkpoint(root / "checkpoint")
    # one torch thread per worker: on a 2-core machine shared with the frontend and the clients,
    # more threads spin against each other (measured ~10x slower per batch under contention)
    options = ArchiveOptions(
        batch_size=batch_size,
        max_batch_delay_ms=max_batch_delay_ms,
        workers=workers,
        response_timeout_s=response_timeout_s,
        torch_threads=1,
    )
    build_archive(ckpt, MODEL, store=root / "model_store", options=options)
    cfg = server_config(root)
    served = ServedModel(cfg)
    try:
        srv.start(cfg, timeout=240)
        served.worker_pids()
        yield served
    finally:
        srv.stop(cfg.state_dir)
        kill_leftover_workers(served.seen_pids)


def kill_leftover_workers(pids: set[int]) -> None:
    """Kill, by PID, any TorchServe worker of ours still alive after the server stopped (e.g. when
    the frontend died first and could not stop them)."""
    for pid in pids:
        try:
            proc = psutil.Process(pid)
            if "model_service_worker" in " ".join(proc.cmdline()):
                proc.kill()
                proc.wait(timeout=10)
        except (psutil.Error, psutil.TimeoutExpired):
            continue


def rss_mib(pids: list[int]) -> dict[int, float]:
    """Resident set size of each live process (MiB)."""
    out = {}
    for pid in pids:
        try:
            out[pid] = psutil.Process(pid).memory_info().rss / 2**20
        except psutil.NoSuchProcess:
            continue
    return out


def write_json(path: Path, data: dict[str, Any]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data, indent=1, default=str))
    return path
