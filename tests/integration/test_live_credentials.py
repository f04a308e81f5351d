"""Live credentials over a real TorchServe: two archives of one digits-shaped model built with
``--monitor-rate 1.0`` (``live_in`` gets test digits, ``live_out`` inverted and noise images), certified
for ``gradient`` so the offline value and the ratio are exported.

- after N explanations the metrics port shows N samples and the live AOPC equals, to 1e-6, the same
  short curve computed offline on the same inputs and the served maps; the describe call and
  ``Client.live_credentials`` carry the same figures;
- the drift score crosses 0.5 only for the shifted stream, and the shipped alert rule fires on the
  scraped values only for it (``promtool test rules`` on series built from the scrape);
- a full queue drops samples (counted) and never fails a request;
- a killed worker is restarted and serves again, and monitoring resumes.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import time
import urllib.request
from pathlib import Path

import numpy as np
import psutil
import pytest
import torch

from xai_serve.data.digits import load_digits_bundle
from xai_serve.evaluation.certify import CertifyOptions, certify
from xai_serve.serving.archive import ArchiveOptions
from xai_serve.serving.live_monitor import MonitorConfig
from xai_serve.testing import write_checkpoint

pytestmark = pytest.mark.integration

RULES = Path(__file__).resolve().parents[2] / "deploy" / "prometheus"
N = 8


@pytest.fixture(scope="module")
def digits() -> np.ndarray:
    te = load_digits_bundle("test")
    pixels = te.denormalise(torch.stack([te.dataset[i][0] for i in range(40)]))
    return (pixels[:, 0].numpy() * 255).round().astype(np.uint8)  # (40, 28, 28) greyscale


@pytest.fixture(scope="module")
def live(private_server, tmp_path_factory, request):
    root = tmp_path_factory.mktemp("live")
    tr = load_digits_bundle("train")
    ckpt = write_checkpoint(root / "ckpt", mean=tr.mean, std=tr.std)  # the digits' training statistics
    creds = certify(ckpt, root / "certify", CertifyOptions(methods=["gradient"], samples=4, batch_size=4))
    options = ArchiveOptions(batch_size=4, max_batch_delay_ms=50, credentials=creds)
    options.monitor = MonitorConfig(rate=1.0, queue_size=64)  # room for every burst below: no drops
    archives = [(ckpt, name, options) for name in ("live_in", "live_out")]
    tight = ArchiveOptions(batch_size=4, max_batch_delay_ms=50, monitor=MonitorConfig(rate=1.0, queue_size=1))
    archives.append((ckpt, "live_tight", tight))  # a queue of one: concurrent requests overflow it
    return private_server(request, root, archives, timeout=300)


def scrape(server) -> str:
    return urllib.request.urlopen(f"{server.config.metrics_url}/metrics", timeout=30).read().decode()


def value(text: str, name: str, **labels: str) -> float | None:
    """The value of the series ``name`` with ``labels`` (TorchServe adds Hostname)."""
    for line in text.splitlines():
        if line.startswith(name + "{") and all(f'{k}="{v}"' in line for k, v in labels.items()):
            return float(line.rsplit(" ", 1)[1])
    return None


def wait_samples(server, model: str, n: int, timeout: float = 120) -> str:
    deadline = time.monotonic() + timeout
    while True:
        text = scrape(server)
        got = sum(
            value(text, f"xai_live_{kind}_total", model=model, method="gradient") or 0
            for kind in ("samples", "dropped", "errors")
        )
        if got >= n:
            return text
        if time.monotonic() > deadline:
            raise AssertionError(f"{model}: {got} live samples after {timeout} s, expected {n}")
        time.sleep(0.5)


def png(arr: np.ndarray) -> bytes:
    import io

    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(arr).save(buf, format="PNG")
    return buf.getvalue()


def test_samples_and_live_aopc_equal_the_offline_curve(live, digits, live_offline):
    images = [png(d) for d in digits[:N]]
    with live.client("grpc", timeout=120) as c:
        answers = [c.explain("live_in", img, "gradient") for img in images]
    text = wait_samples(live, "live_in", N)
    assert value(text, "xai_live_samples_total", model="live_in", method="gradient") == N
    assert value(text, "xai_live_dropped_total", model="live_in", method="gradient") is None  # none dropped

    offline = live_offline(live.checkpoint, images, answers, "gradient")
    for order, scores in (("morf", offline.aopc_morf), ("lerf", offline.aopc_lerf)):
        served = value(text, "xai_live_aopc", model="live_in", method="gradient", order=order)
        assert served == pytest.approx(float(scores.mean()), abs=1e-6), order
    served_abpc = value(text, "xai_live_abpc", model="live_in", method="gradient")
    assert served_abpc == pytest.approx(float(offline.abpc.mean()), abs=1e-6)
    cred_morf = value(text, "xai_live_credential_aopc", model="live_in", method="gradient", order="morf")
    assert cred_morf is not None
    ratio = value(text, "xai_live_aopc_ratio", model="live_in", method="gradient")
    assert ratio == pytest.approx(float(offline.aopc_morf.mean()) / cred_morf, rel=1e-6)

    with live.client("http", timeout=120) as c:
        lc = c.live_credentials("live_in")
    assert lc.enabled and lc.rate == 1.0
    g = lc.methods["gradient"]
    assert g.samples == N and g.aopc_morf == pytest.approx(float(offline.aopc_morf.mean()), abs=1e-6)
    assert g.credential_aopc_morf == pytest.approx(cred_morf) and g.stability is not None


def alert_fires(tmp_path: Path, scores: dict[str, float]) -> set[str]:
    """The models for which the shipped XaiLiveInputDrift rule fires when each model's drift score
    stays at its scraped value for 15 minutes (promtool test rules, one expectation per model)."""
    exe = shutil.which("promtool")
    if exe is None:
        pytest.fail("promtool is not installed (apt-get install prometheus; `make sysdeps`)")
    shutil.copy(RULES / "xai-alerts.yaml", tmp_path / "xai-alerts.yaml")
    fired = set()
    for model, score in scores.items():
        series = f'      - series: \'xai_live_drift_score{{model="{model}",Hostname="vm"}}\'\n'
        test = (
            "rule_files: [xai-alerts.yaml]\nevaluation_interval: 1m\ntests:\n  - interval: 1m\n"
            f"    input_series:\n{series}        values: '{score!r}x20'\n"
            "    alert_rule_test:\n      - eval_time: 15m\n        alertname: XaiLiveInputDrift\n"
            "        exp_alerts: []\n"
        )
        (tmp_path / "t.yaml").write_text(test)
        done = subprocess.run([exe, "test", "rules", "t.yaml"], cwd=tmp_path, capture_output=True, text=True)
        if done.returncode != 0:  # the expectation "no alert" failed: it fired
            assert "XaiLiveInputDrift" in done.stdout + done.stderr, done.stdout + done.stderr
            fired.add(model)
    return fired


def test_drift_and_its_alert_cross_only_for_shifted_inputs(live, digits, tmp_path):
    rng = np.random.default_rng(0)
    shifted = [255 - d for d in digits[8:24]] + [
        (rng.random((28, 28)) * 255).astype(np.uint8) for _ in range(8)
    ]
    with live.client("grpc", timeout=120) as c:
        for d in digits[8:32]:
            c.explain("live_in", png(d), "gradient")
        for d in shifted:
            c.explain("live_out", png(d), "gradient")
    wait_samples(live, "live_in", N + 24)
    text = wait_samples(live, "live_out", len(shifted))
    assert value(text, "xai_live_samples_total", model="live_out", method="gradient") == len(shifted)
    score_in = value(text, "xai_live_drift_score", model="live_in")
    score_out = value(text, "xai_live_drift_score", model="live_out")
    assert score_in is not None and score_in < 0.5
    assert score_out is not None and score_out > 0.5
    assert alert_fires(tmp_path, {"live_in": score_in, "live_out": score_out}) == {"live_out"}


def test_a_full_queue_drops_samples_and_never_fails_a_request(live, digits):
    from concurrent.futures import ThreadPoolExecutor

    def explain(d: np.ndarray) -> int:
        with live.client("grpc", timeout=120) as c:
            return len(c.explain("live_tight", png(d), "gradient").heatmaps)

    with ThreadPoolExecutor(8) as pool:
        assert list(pool.map(explain, digits[:24])) == [1] * 24
    text = wait_samples(live, "live_tight", 24)
    samples = value(text, "xai_live_samples_total", model="live_tight", method="gradient") or 0
    dropped = value(text, "xai_live_dropped_total", model="live_tight", method="gradient") or 0
    assert samples + dropped == 24 and dropped >= 1 and samples >= 1


def test_a_killed_worker_restarts_and_monitoring_resumes(live, digits):
    import json

    def worker_pid() -> int | None:
        url = f"{live.config.management_url}/models/live_in"
        req = urllib.request.Request(url, headers={"Authorization": f"Bearer {live.tokens['management']}"})
        d = json.loads(urllib.request.urlopen(req, timeout=30).read())[0]
        ready = [w for w in d["workers"] if w["status"] == "READY" and w.get("pid")]
        return int(ready[0]["pid"]) if ready else None

    before = value(scrape(live), "xai_live_samples_total", model="live_in", method="gradient") or 0
    pid = worker_pid()
    assert pid is not None
    psutil.Process(pid).kill()
    deadline = time.monotonic() + 180
    while worker_pid() in (None, pid):
        assert time.monotonic() < deadline, "the worker was not restarted"
        time.sleep(1)
    with live.client("grpc", timeout=120) as c:
        for d in digits[:4]:
            assert c.explain("live_in", png(d), "gradient").heatmap("gradient").values.shape == (1, 28, 28)
    text = wait_samples(live, "live_in", int(before) + 4)
    assert re.search(r'xai_live_aopc\{model="live_in",method="gradient",order="morf"', text)
