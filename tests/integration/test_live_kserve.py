"""Live credentials on the kserve engine (``xai serve --engine kserve``): a digits-shaped archive built
with ``--monitor-rate 1.0`` and certified for ``gradient``, served by a real KServe model server on free
loopback ports with a private state dir (stopped by PID, also on failure).

After N explanations through ``Client(protocol="v2")`` KServe's ``/metrics`` shows N samples, and the
live AOPC (both orders), ABPC and ratio equal, to 1e-6, the same short curve computed offline on the same
inputs and the served maps (the TorchServe test's reference, ``live_offline``);
``Client(protocol="v2").live_credentials`` carries the same figures from ``/v2/models/{name}/describe``.
"""

from __future__ import annotations

import io
import time
import urllib.request

import numpy as np
import pytest
import torch
from PIL import Image

from xai_serve.data.digits import load_digits_bundle
from xai_serve.evaluation.certify import CertifyOptions, certify
from xai_serve.serving.archive import ArchiveOptions, build_archive
from xai_serve.serving.live_monitor import MonitorConfig
from xai_serve.serving.v2 import kserve_engine
from xai_serve.testing import write_checkpoint

pytestmark = pytest.mark.integration

MODEL = "live_v2"
N = 6


@pytest.fixture(scope="module")
def live_kserve(tmp_path_factory: pytest.TempPathFactory, request: pytest.FixtureRequest):
    root = tmp_path_factory.mktemp("live_kserve")
    tr = load_digits_bundle("train")
    ckpt = write_checkpoint(root / "ckpt", mean=tr.mean, std=tr.std)  # the digits' training statistics
    creds = certify(ckpt, root / "certify", CertifyOptions(methods=["gradient"], samples=4, batch_size=4))
    options = ArchiveOptions(credentials=creds, monitor=MonitorConfig(rate=1.0, queue_size=64))
    build_archive(ckpt, MODEL, store=root / "store", options=options)
    cfg = kserve_engine.KServeConfig.on_free_ports(root / "store", [MODEL], root / "state")
    request.addfinalizer(lambda: kserve_engine.stop(root / "state"))  # before start: runs on any failure
    return kserve_engine.start(cfg, timeout=180), ckpt


def pngs(n: int) -> list[bytes]:
    te = load_digits_bundle("test")
    pixels = te.denormalise(torch.stack([te.dataset[i][0] for i in range(n)]))
    out = []
    for d in (pixels[:, 0].numpy() * 255).round().astype(np.uint8):
        buf = io.BytesIO()
        Image.fromarray(d).save(buf, format="PNG")
        out.append(buf.getvalue())
    return out


def value(text: str, name: str, **labels: str) -> float | None:
    for line in text.splitlines():
        if line.startswith(name + "{") and all(f'{k}="{v}"' in line for k, v in labels.items()):
            return float(line.rsplit(" ", 1)[1])
    return None


def wait_samples(url: str, n: int, timeout: float = 120) -> str:
    """KServe's /metrics once the monitor has checked (or dropped, or failed) ``n`` samples."""
    deadline = time.monotonic() + timeout
    while True:
        text = urllib.request.urlopen(f"{url}/metrics", timeout=30).read().decode()
        got = sum(
            value(text, f"xai_live_{kind}_total", model=MODEL, method="gradient") or 0
            for kind in ("samples", "dropped", "errors")
        )
        if got >= n:
            return text
        if time.monotonic() > deadline:
            raise AssertionError(f"{got} live samples after {timeout} s, expected {n}")
        time.sleep(0.5)


def test_metrics_and_describe_equal_the_offline_curve(live_kserve, live_offline) -> None:
    server, ckpt = live_kserve
    cfg = server.config
    images = pngs(N)
    answers = []
    for transport, part in (("grpc", images[: N // 2]), ("http", images[N // 2 :])):
        with cfg.client(transport, timeout=120) as c:
            answers += [c.explain(MODEL, img, "gradient") for img in part]
    text = wait_samples(cfg.inference_url, N)
    assert value(text, "xai_live_samples_total", model=MODEL, method="gradient") == N
    for kind in ("dropped", "errors"):  # the collector exports them at 0 (TorchServe: absent until counted)
        assert value(text, f"xai_live_{kind}_total", model=MODEL, method="gradient") == 0, kind

    offline = live_offline(ckpt, images, answers, "gradient")
    for order, scores in (("morf", offline.aopc_morf), ("lerf", offline.aopc_lerf)):
        served = value(text, "xai_live_aopc", model=MODEL, method="gradient", order=order)
        assert served == pytest.approx(float(scores.mean()), abs=1e-6), order
    abpc = value(text, "xai_live_abpc", model=MODEL, method="gradient")
    assert abpc == pytest.approx(float(offline.abpc.mean()), abs=1e-6)
    cred_morf = value(text, "xai_live_credential_aopc", model=MODEL, method="gradient", order="morf")
    assert cred_morf is not None
    ratio = value(text, "xai_live_aopc_ratio", model=MODEL, method="gradient")
    assert ratio == pytest.approx(float(offline.aopc_morf.mean()) / cred_morf, rel=1e-6)

    for transport in ("grpc", "http"):  # the describe route (REST) behind both v2 transports
        with cfg.client(transport, timeout=120) as c:
            lc = c.live_credentials(MODEL)
        assert lc.enabled and lc.rate == 1.0, transport
        g = lc.methods["gradient"]
        assert g.samples == N and g.dropped == 0 and g.errors == 0, transport
        assert g.aopc_morf == pytest.approx(float(offline.aopc_morf.mean()), abs=1e-6), transport
        assert g.aopc_lerf == pytest.approx(float(offline.aopc_lerf.mean()), abs=1e-6), transport
        assert g.credential_aopc_morf == pytest.approx(cred_morf) and g.stability is not None, transport
        assert lc.drift_samples == N and lc.drift_score is not None, transport
