"""The metrics yaml declares our metrics next to TorchServe's defaults; the observer emits them."""

from __future__ import annotations

import yaml

from xai_serve.serving.metrics import TorchServeObserver, metrics_config, write_metrics_config


def test_metrics_yaml_declares_ours(tmp_path):
    cfg = yaml.safe_load(write_metrics_config(tmp_path / "m.yaml").read_text())
    mm = cfg["model_metrics"]
    assert {
        "name": "xai_explanations_total",
        "unit": "count",
        "dimensions": ["model", "method", "status"],
    } in mm["counter"]
    hist = {e["name"]: e["dimensions"] for e in mm["histogram"]}
    assert hist == {"xai_explanation_duration_seconds": ["model", "method"], "xai_batch_size": ["model"]}
    assert any(e["name"] == "HandlerTime" for e in mm["gauge"])  # TorchServe's defaults kept
    assert "ts_metrics" in cfg and metrics_config() == cfg


def test_observer_emits_through_torchserve_metric_cache(tmp_path):
    from ts.metrics.metric_cache_yaml_impl import MetricsCacheYamlImpl

    cache = MetricsCacheYamlImpl(str(write_metrics_config(tmp_path / "m.yaml")))
    cache.initialize_cache()
    lines: list[str] = []
    import logging

    class Grab(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            lines.append(record.getMessage())

    logger = logging.getLogger("ts.metrics.caching_metric")
    h = Grab()
    logger.addHandler(h)
    old = logger.level
    logger.setLevel(logging.INFO)
    try:
        obs = TorchServeObserver(cache, "digits")
        obs.explained("lrp", "ok", 0.25, 3)
        obs.batch(4)
    finally:
        logger.removeHandler(h)
        logger.setLevel(old)
    text = "\n".join(lines)
    import re

    # TorchServe may capitalise known units ("Count"); the name, value and dimensions are ours
    assert re.search(r"\[METRICS\]xai_explanations_total\.\w+:3\|#model:digits,method:lrp,status:ok", text)
    assert re.search(
        r"\[METRICS\]xai_explanation_duration_seconds\.\w+:0\.25\|#model:digits,method:lrp", text
    )
    assert re.search(r"\[METRICS\]xai_batch_size\.\w+:4\|#model:digits\|#type:HISTOGRAM", text)
