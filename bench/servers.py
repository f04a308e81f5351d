"""TorchServe instances the benchmarks share, started once per harness run and stopped by
``stop_all()`` (the harness calls it at the end, also after a failure).

``resnet18()`` serves two models from one TorchServe: ``xai_resnet18`` (ours: ``xai archive`` of a
ResNet-18 checkpoint) and ``stock_resnet18`` (TorchServe's stock ``image_classifier`` handler, whose
``/explanations`` runs Captum IntegratedGradients with n_steps=15), both with the same random
weights (seed 0) and 1000 classes. ``digits()`` serves a small random-weight MLP for 1x28x28 digits
(the load benchmark). Both go through the serving lifecycle API (``xai_serve.serving.server``):
private state dir, free loopback ports, token auth, PID-based stop. Every benchmark archive has the
explanation cache off (``cache_mib=0``): repeated requests are measured computed, not answered from it.
"""

from __future__ import annotations

import atexit
import json
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench.common import Measurement, summarise

OURS = "xai_resnet18"
STOCK = "stock_resnet18"
DIGITS = "digits"
IMAGENET_MEAN = [0.485, 0.456, 0.406]
IMAGENET_STD = [0.229, 0.224, 0.225]

# the stock handler's model file: torchvision's ResNet-18 as a no-argument class
_STOCK_MODEL_PY = """from torchvision.models.resnet import BasicBlock, ResNet


class ResNet18(ResNet):
    def __init__(self):
        super().__init__(BasicBlock, [2, 2, 2, 2], num_classes=1000)
"""


@dataclass
class Running:
    """A started server: its config, the models it serves, and its tokens."""

    config: Any  # xai_serve.serving.server.ServerConfig
    models: list[str]
    root: Path

    def tokens(self) -> dict[str, str | None]:
        data = json.loads(self.config.key_file.read_text()) if self.config.key_file.exists() else {}
        return {k: (data.get(k) or {}).get("key") for k in ("inference", "management")}

    def client(self, protocol: str, *, timeout: float = 120.0, retries: int = 0) -> Any:
        return self.config.client(protocol, timeout=timeout, retries=retries)

    def post(self, path: str, body: bytes, content_type: str = "image/png", timeout: float = 300.0) -> bytes:
        """POST to the inference API (TorchServe's own REST, as the stock handler is called)."""
        req = urllib.request.Request(
            f"{self.config.inference_url}{path}",
            data=body,
            method="POST",
            headers={"Content-Type": content_type, "Authorization": f"Bearer {self.tokens()['inference']}"},
        )
        with urllib.request.urlopen(req, timeout=timeout) as resp:
            return bytes(resp.read())

    def worker_pids(self, model: str) -> list[int]:
        from xai_serve.serving import server as srv

        return [
            int(w["pid"])
            for d in srv.model_status(self.config, model)
            for w in d.get("workers", [])
            if w.get("status") == "READY"
        ]

    def stop(self) -> None:
        from xai_serve.serving import server as srv

        srv.stop(self.config.state_dir)


_RUNNING: dict[str, Running] = {}
_LOCK = threading.Lock()


def stop_all() -> None:
    with _LOCK:
        while _RUNNING:
            _, running = _RUNNING.popitem()
            try:
                running.stop()
            except Exception as exc:  # keep stopping the others
                print(f"[bench] could not stop {running.config.state_dir}: {exc}", file=sys.stderr)
                continue
            shutil.rmtree(running.root, ignore_errors=True)  # archives, checkpoints, logs


atexit.register(stop_all)


def _start(key: str, build: Callable[[Path], list[str]], **config: Any) -> Running:
    from xai_serve.serving import server as srv

    with _LOCK:
        if key in _RUNNING:
            return _RUNNING[key]
        root = Path(tempfile.mkdtemp(prefix=f"xai-bench-{key}-"))
        models = build(root / "model_store")
        cfg = srv.ServerConfig.on_free_ports(root / "model_store", models, root / "state", **config)
        t0 = time.perf_counter()
        srv.start(cfg, timeout=300)
        running = Running(cfg, models, root)
        running.start_seconds = time.perf_counter() - t0  # type: ignore[attr-defined]
        _RUNNING[key] = running
        return running


def _card_and_checkpoint(
    directory: Path,
    model: str,
    kwargs: dict[str, Any],
    input_shape: list[int],
    mean: list[float],
    std: list[float],
    num_classes: int,
) -> Path:
    """A random-weight checkpoint (seed 0) of ``model`` with labels ``class_0`` ... (synthetic data)."""
    from xai_serve.testing import write_checkpoint

    labels = [f"class_{i}" for i in range(num_classes)]
    return write_checkpoint(
        directory,
        model=model,
        model_kwargs=kwargs,
        input_shape=input_shape,
        mean=mean,
        std=std,
        num_classes=num_classes,
        labels=labels,
        dataset="synthetic",
    )


def _build_resnet18(store: Path) -> list[str]:

    from xai_serve.serving.archive import ArchiveOptions, build_archive

    work = store.parent / "build"
    ckpt = _card_and_checkpoint(
        work / "ckpt", "resnet18", {"num_classes": 1000}, [3, 224, 224], IMAGENET_MEAN, IMAGENET_STD, 1000
    )
    # our worker's default thread policy (serving/threads.py) gives a model of this cost every core,
    # as torch's default gives the stock worker
    build_archive(
        ckpt, OURS, store=store, options=ArchiveOptions(batch_size=1, max_batch_delay_ms=1, cache_mib=0)
    )
    # the stock archive: same state_dict (our canonicalised ResNet keeps torchvision's keys)
    (work / "model.py").write_text(_STOCK_MODEL_PY)
    (work / "index_to_name.json").write_text(json.dumps({str(i): f"class_{i}" for i in range(1000)}))
    archiver = Path(sys.executable).parent / "torch-model-archiver"
    subprocess.run(
        [
            str(archiver),
            "--model-name",
            STOCK,
            "--version",
            "1.0",
            "--model-file",
            str(work / "model.py"),
            "--serialized-file",
            str(ckpt / "best.pt"),
            "--handler",
            "image_classifier",
            "--extra-files",
            str(work / "index_to_name.json"),
            "--export-path",
            str(store),
            "--force",
        ],
        check=True,
        capture_output=True,
        text=True,
    )
    return [OURS, STOCK]


def resnet18() -> Running:
    """Ours and the stock handler on the same ResNet-18 weights, in one TorchServe."""
    return _start("resnet18", _build_resnet18)


def _build_digits(store: Path) -> list[str]:
    from xai_serve.serving.archive import ArchiveOptions, build_archive

    kwargs = {"input_shape": [1, 28, 28], "hidden": [128, 64]}
    ckpt = _card_and_checkpoint(store.parent / "ckpt", "mlp", kwargs, [1, 28, 28], [0.5], [0.25], 10)
    build_archive(
        ckpt,
        DIGITS,
        store=store,
        options=ArchiveOptions(batch_size=8, max_batch_delay_ms=5, workers=1, torch_threads=1, cache_mib=0),
    )
    return [DIGITS]


def digits() -> Running:
    """The small digits MLP the load benchmark drives (batch 8, 5 ms delay, one torch thread)."""
    return _start("digits", _build_digits)


def test_image(size: int = 224, seed: int = 0) -> bytes:
    """A deterministic RGB PNG of ``size``x``size`` (smooth noise, so PNG size is realistic)."""
    import io

    import numpy as np
    from PIL import Image

    rng = np.random.default_rng(seed)
    small = rng.integers(0, 256, size=(size // 8, size // 8, 3), dtype=np.uint8)
    img = Image.fromarray(small).resize((size, size), Image.Resampling.BILINEAR)
    buf = io.BytesIO()
    img.save(buf, format="PNG")
    return buf.getvalue()


class PeakRss:
    """Polls a process's RSS in a background thread; ``peak_mib`` after ``stop()``."""

    def __init__(self, pid: int, interval: float = 0.01) -> None:
        import psutil

        self._proc = psutil.Process(pid)
        self._interval = interval
        self._stop = threading.Event()
        self.start_mib = self._proc.memory_info().rss / 2**20
        self.peak_mib = self.start_mib
        self._thread = threading.Thread(target=self._poll, daemon=True)
        self._thread.start()

    def _poll(self) -> None:
        while not self._stop.is_set():
            try:
                self.peak_mib = max(self.peak_mib, self._proc.memory_info().rss / 2**20)
            except Exception:
                return
            time.sleep(self._interval)

    def stop(self) -> float:
        self._stop.set()
        self._thread.join()
        return self.peak_mib


def worker_memory_rows(quick: bool) -> list[Measurement]:
    """Peak RSS of each model's worker while it answers explanations (ours: several methods over
    gRPC; stock: Captum IG over /explanations), sequential requests after a warm-up."""
    running = resnet18()
    image = test_image()
    n = 3 if quick else 10
    rows: list[Measurement] = []
    case = "served resnet18 224x224, worker process (psutil polling)"
    client = running.client("grpc")

    def ours(*methods: str) -> Callable[[], object]:
        return lambda: client.explain(OURS, image, list(methods))

    plans: list[tuple[str, str, Callable[[], object]]] = [
        (
            STOCK,
            "stock image_classifier worker: Captum IG n_steps=15",
            lambda: running.post(f"/explanations/{STOCK}", image),
        ),
        (OURS, "ours worker: gradient", ours("gradient")),
        (OURS, "ours worker: lrp", ours("lrp")),
        (OURS, "ours worker: gradcam+guided_backprop+lrp", ours("gradcam", "guided_backprop", "lrp")),
    ]
    baseline = plans[0][1]
    for model, name, call in plans:
        (pid,) = running.worker_pids(model)
        call()  # warm-up
        idle = PeakRss(pid)
        idle_mib = idle.stop()
        peaks = []
        for _ in range(n):
            poll = PeakRss(pid)
            call()
            peaks.append(poll.stop())
        med, q1, q3 = summarise(peaks)
        rows.append(
            Measurement(
                "memory",
                case,
                f"{name}: peak",
                "MiB",
                med,
                q1,
                q3,
                n=len(peaks),
                baseline=None if name == baseline else f"{baseline}: peak",
            )
        )
        rows.append(
            Measurement(
                "memory",
                case,
                f"{name}: idle after warm-up",
                "MiB",
                idle_mib,
                baseline=None if name == baseline else f"{baseline}: idle after warm-up",
            )
        )
    client.close()
    return rows
