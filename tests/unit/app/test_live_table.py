"""The demo report's live-credentials table, from a real monitor's figures as the client reads them."""

from __future__ import annotations

import numpy as np
from xai_client.live import live_from_describe
from xai_client.requests import build_request

from xai_serve.app.live_table import live_table
from xai_serve.models import ModelCard, load_checkpoint
from xai_serve.serving.live_monitor import LiveMonitor, MonitorConfig
from xai_serve.serving.ports import RegistryEngine
from xai_serve.serving.service import ExplainService
from xai_serve.testing import write_checkpoint


def test_table_shows_live_next_to_archived(tmp_path):
    ckpt = write_checkpoint(tmp_path / "ckpt")
    model, card = load_checkpoint(ckpt)[0], ModelCard.load(ckpt / "model.json")
    engine = RegistryEngine()
    creds = {"methods": {"gradient": {"faithfulness": {"aopc_morf": 0.25, "aopc_lerf": 0.05, "abpc": 2.0}}}}
    monitor = LiveMonitor(
        "tiny",
        model,
        card,
        engine=engine,
        methods=engine.methods(),
        credentials=creds,
        config=MonitorConfig(rate=1.0),
    )
    svc = ExplainService("tiny", model, card, monitor=monitor)
    x = (np.random.default_rng(0).random((1, 28, 28))).astype(np.float32)
    image = build_request(x, methods={"class_image": {"iterations": 3}})
    svc.handle([build_request(x, methods=["gradient"]), image])
    assert monitor.wait()
    live = live_from_describe({"live": monitor.snapshot()})
    g = live.methods["gradient"]
    assert live.enabled and g.samples == 1 and g.credential_aopc_morf == 0.25 and "class_image" in live.off
    html = live_table(live)
    assert (
        "<td>gradient</td><td>1</td><td>0</td>" in html
        and f"<td>{g.aopc_morf:.3f}</td><td>0.250</td>" in html
    )
    assert "not a heatmap method" in html
    assert live_table(live_from_describe({"live": None})) == ""
