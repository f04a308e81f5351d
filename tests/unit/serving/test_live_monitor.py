"""Live credentials in process: the real service and monitor on the tiny model; faults are injected by
wrapping the monitor's explanation engine, as the service tests do."""

from __future__ import annotations

import dataclasses
import re
import threading

import numpy as np
import pytest
import torch
from prometheus_client import CollectorRegistry, generate_latest
from xai_client.api.v1 import explain_pb2 as pb
from xai_client.requests import build_request
from xai_client.tensors import from_proto

from xai_serve.data.digits import load_digits_bundle
from xai_serve.data.input_stats import input_stats
from xai_serve.errors import InvalidArgumentError
from xai_serve.evaluation.live_checks import short_deletion
from xai_serve.serving.inputs import decode_input
from xai_serve.serving.limits import CostLimits
from xai_serve.serving.live_metrics import LiveCollector, TorchServeLiveSink
from xai_serve.serving.live_monitor import LiveMonitor, MonitorConfig
from xai_serve.serving.ports import RegistryEngine
from xai_serve.serving.service import ExplainService

DRIFT_THRESHOLD = 0.5  # deploy/prometheus/xai-alerts.yaml


@pytest.fixture(scope="module")
def digits() -> torch.Tensor:
    """Test digits as pixels (N, 1, 28, 28) in 0..1."""
    te = load_digits_bundle("test")
    return te.denormalise(torch.stack([te.dataset[i][0] for i in range(40)]))


@pytest.fixture(scope="module")
def digits_card(card):
    """The tiny model's card with the digits' normalisation and training statistics."""
    tr = load_digits_bundle("train")
    return dataclasses.replace(card, mean=tr.mean, std=tr.std, input_stats=input_stats(tr))


def _request(pixels: torch.Tensor, method: str = "gradient") -> pb.ExplainRequest:
    return build_request(pixels.numpy().astype(np.float32), methods=[method])


class Failing(RegistryEngine):
    """The monitor's engine failing every call (a bug in a live check)."""

    def explain(self, *args, **kwargs):
        raise RuntimeError("injected monitoring fault")


class Blocking(RegistryEngine):
    """The monitor's engine waiting until released (a slow check: the queue fills)."""

    def __init__(self) -> None:
        self.go = threading.Event()

    def explain(self, *args, **kwargs):
        self.go.wait(30)
        return super().explain(*args, **kwargs)


def _service(model, card, engine=None, **config) -> ExplainService:
    engine_ = engine or RegistryEngine()
    monitor = LiveMonitor(
        "tiny", model, card, engine=engine_, methods=engine_.methods(), config=MonitorConfig(**config)
    )
    return ExplainService("tiny", model, card, monitor=monitor)


def test_rate_one_checks_every_explanation_equal_to_the_offline_curve(model, digits_card, digits):
    svc = _service(model, digits_card, rate=1.0)
    n = 6
    heatmaps, targets = [], []
    for i in range(0, n, 2):
        responses = svc.handle([_request(digits[i]), _request(digits[i + 1])])
        for r in responses:
            assert r.status.code == pb.OK
            heatmaps.append(from_proto(r.heatmaps[0].values))
            targets.append(r.heatmaps[0].target)
    assert svc.monitor is not None and svc.monitor.wait()
    snap = svc.monitor.snapshot()
    fig = snap["methods"]["gradient"]
    assert fig["samples"] == n and fig["dropped"] == 0 and fig["errors"] == 0
    x = torch.stack([decode_input(_request(digits[i]).input, digits_card).x for i in range(n)])
    offline = short_deletion(model, x, torch.tensor(targets), torch.from_numpy(np.stack(heatmaps)))
    assert fig["aopc"]["morf"] == pytest.approx(float(offline.aopc_morf.mean()), abs=1e-6)
    assert fig["aopc"]["lerf"] == pytest.approx(float(offline.aopc_lerf.mean()), abs=1e-6)
    assert fig["abpc"] == pytest.approx(float(offline.abpc.mean()), abs=1e-6)
    assert offline.morf.shape == (n, 11)  # 10 steps and the unperturbed input
    assert -1.0 <= fig["stability"] <= 1.0 and fig["stability"] > 0.5  # 2 % noise: nearly the same map
    assert snap["drift"]["samples"] == n and snap["drift"]["score"] < DRIFT_THRESHOLD


@pytest.mark.parametrize("shift", ["inverted", "noise"])
def test_drift_crosses_the_threshold_only_off_distribution(model, digits_card, digits, shift):
    svc = _service(model, digits_card, rate=1.0)
    shifted = (
        1 - digits[:16]
        if shift == "inverted"
        else torch.rand(digits[:16].shape, generator=torch.Generator().manual_seed(0))
    )
    for i in range(0, 16, 4):
        svc.handle([_request(p) for p in digits[i : i + 4]])
    assert svc.monitor is not None and svc.monitor.wait()
    assert svc.monitor.snapshot()["drift"]["score"] < DRIFT_THRESHOLD
    off = _service(model, digits_card, rate=1.0)
    for i in range(0, 16, 4):
        off.handle([_request(p) for p in shifted[i : i + 4]])
    assert off.monitor is not None and off.monitor.wait()
    assert off.monitor.snapshot()["drift"]["score"] > DRIFT_THRESHOLD


def test_a_failing_check_never_fails_a_request(model, digits_card, digits):
    svc = _service(model, digits_card, engine=Failing(), rate=1.0)
    responses = svc.handle([_request(p) for p in digits[:4]])
    assert [r.status.code for r in responses] == [pb.OK] * 4 and all(len(r.heatmaps) == 1 for r in responses)
    assert svc.monitor is not None and svc.monitor.wait()
    fig = svc.monitor.snapshot()["methods"]["gradient"]
    assert fig["errors"] == 4 and fig["samples"] == 0 and fig["aopc"] is None


def test_a_full_queue_drops_and_never_waits(model, digits_card, digits):
    engine = Blocking()
    svc = _service(model, digits_card, engine=engine, rate=1.0, queue_size=2)
    try:
        for i in range(0, 12, 4):
            responses = svc.handle([_request(p) for p in digits[i : i + 4]])
            assert [r.status.code for r in responses] == [pb.OK] * 4
    finally:
        engine.go.set()
    assert svc.monitor is not None and svc.monitor.wait()
    fig = svc.monitor.snapshot()["methods"]["gradient"]
    # one sample in the worker, at most 2 queued: the rest dropped, every one counted
    assert fig["dropped"] >= 12 - 3 and fig["samples"] + fig["dropped"] == 12


def test_expensive_and_non_heatmap_methods_are_not_monitored(model, digits_card, digits):
    engine = RegistryEngine()
    monitor = LiveMonitor(
        "tiny",
        model,
        digits_card,
        engine=engine,
        methods=engine.methods(),
        cost_limits=CostLimits(max_work=20),  # below the curve's 22 forward passes
        config=MonitorConfig(rate=1.0),
    )
    svc = ExplainService("tiny", model, digits_card, monitor=monitor, cost_limits=CostLimits(max_work=20))
    assert svc.handle([_request(digits[0])])[0].status.code == pb.OK
    assert monitor.wait()
    snap = monitor.snapshot()
    assert "max_work" in snap["off"]["gradient"] and "gradient" not in snap["methods"]


def test_rate_zero_is_off_and_config_is_checked(model, digits_card):
    assert not LiveMonitor("tiny", model, digits_card, engine=RegistryEngine(), methods={}).enabled
    for bad in ({"rate": 1.5}, {"rate": -0.1}, {"queue_size": 0}):
        with pytest.raises(InvalidArgumentError):
            MonitorConfig(**bad)
    assert MonitorConfig.from_config({"monitor_rate": "0.25", "monitor_queue": 4}) == MonitorConfig(
        rate=0.25, queue_size=4
    )
    with pytest.raises(InvalidArgumentError):
        MonitorConfig.from_config({"monitor_rate": "often"})


def test_metrics_exported_through_torchserve_and_prometheus_client(model, digits_card, digits, tmp_path):
    emitted: list[tuple[str, str, float, list[str]]] = []
    engine = RegistryEngine()
    creds = {"methods": {"gradient": {"faithfulness": {"aopc_morf": 0.2, "aopc_lerf": 0.05, "abpc": 1.5}}}}
    monitor = LiveMonitor(
        "tiny",
        model,
        digits_card,
        engine=engine,
        methods=engine.methods(),
        credentials=creds,
        config=MonitorConfig(rate=1.0),
        sink=TorchServeLiveSink(lambda *a: emitted.append(a)),
    )
    svc = ExplainService("tiny", model, digits_card, monitor=monitor)
    svc.handle([_request(p) for p in digits[:3]])
    assert monitor.wait()
    samples = [e for e in emitted if e[0] == "xai_live_samples_total"]
    assert sum(e[2] for e in samples) == 3 and all(e[1] == "counter" for e in samples)
    fig = monitor.snapshot()["methods"]["gradient"]
    assert fig["aopc_ratio"] == pytest.approx(fig["aopc"]["morf"] / 0.2)
    registry = CollectorRegistry()
    registry.register(LiveCollector(lambda: [monitor]))
    text = generate_latest(registry).decode()
    assert 'xai_live_samples_total{method="gradient",model="tiny"} 3.0' in text
    assert 'xai_live_credential_aopc{method="gradient",model="tiny",order="morf"} 0.2' in text
    assert 'xai_live_drift_score{model="tiny"}' in text
    assert not re.search(r"\sNaN$", text, re.MULTILINE)  # figures not measured are left out


def test_archive_option_reaches_the_handler_metrics_and_describe(ckpt_dir, tmp_path, context_cls, unpack):
    import json

    import yaml

    from xai_serve.serving.archive import ArchiveOptions, build_archive
    from xai_serve.serving.handler import XaiHandler

    plain = build_archive(ckpt_dir, "plain", store=tmp_path / "store")
    options = ArchiveOptions(monitor=MonitorConfig(rate=1.0, queue_size=8))
    mar = build_archive(ckpt_dir, "tiny", store=tmp_path / "store", options=options)
    plain_dir, model_dir = unpack(plain, tmp_path / "plain"), unpack(mar, tmp_path / "tiny")
    assert "monitor_rate" not in yaml.safe_load((plain_dir / "model-config.yaml").read_text())["xai"]
    assert yaml.safe_load((model_dir / "model-config.yaml").read_text())["xai"]["monitor_queue"] == 8
    off = XaiHandler()
    off.initialize(context_cls.of_model_dir(plain_dir))
    assert off.service is not None and off.service.monitor is None
    assert json.loads(off.describe())["live"] is None

    h = XaiHandler()
    ctx = context_cls.of_model_dir(model_dir)
    h.initialize(ctx)
    x = np.random.default_rng(0).random((1, 28, 28)).astype(np.float32)
    ctx.headers = [{"Content-Type": "application/x-protobuf", "Accept": "application/x-protobuf"}]
    body = build_request(x, methods=["gradient"]).SerializeToString()
    (answer,) = h.handle([{"body": body}], ctx)
    assert pb.ExplainResponse.FromString(answer).status.code == pb.OK
    assert h.service is not None and h.service.monitor is not None and h.service.monitor.wait()
    live = json.loads(h.describe())["live"]
    assert live["rate"] == 1.0 and live["methods"]["gradient"]["samples"] == 1
    emitted = {(name, dims) for name, _value, dims in ctx.metrics.log}
    assert ("xai_live_samples_total", ("tiny", "gradient")) in emitted
    assert ("xai_live_aopc", ("tiny", "gradient", "morf")) in emitted


def test_figures_are_means_over_a_bounded_window(model, digits_card, digits):
    svc = _service(model, digits_card, rate=1.0, window=2, drift_window=3)
    for p in digits[:5]:
        svc.handle([_request(p)])
        assert svc.monitor is not None and svc.monitor.wait()
    monitor = svc.monitor
    fig = monitor._figures["gradient"]
    assert fig.samples == 5 and len(fig.aopc_morf) == 2 and len(monitor._moments) == 3
    snap = monitor.snapshot()
    assert snap["methods"]["gradient"]["aopc"]["morf"] == pytest.approx(float(np.mean(fig.aopc_morf)))
    assert snap["drift"]["samples"] == 3
