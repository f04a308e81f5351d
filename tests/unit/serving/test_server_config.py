"""Server lifecycle pieces that need no JVM: config rendering, Java detection, stop without a server."""

from __future__ import annotations

from pathlib import Path

import pytest

from xai_serve.serving.server import ServerConfig, ServerError, find_java, free_ports, render_config, stop

TEMPLATE = Path(__file__).resolve().parents[3] / "model_store" / "config.properties"


def _props(text: str) -> dict[str, str]:
    return dict(line.split("=", 1) for line in text.splitlines() if line and not line.startswith("#"))


def test_config_is_locked_down(tmp_path):
    cfg = ServerConfig(
        model_store=tmp_path / "store",
        models=["digits"],
        state_dir=tmp_path / "state",
        inference_port=1,
        management_port=2,
        metrics_port=3,
        grpc_port=4,
        grpc_management_port=5,
    ).resolved()
    p = _props(render_config(cfg, tmp_path / "metrics.yaml"))
    assert p["inference_address"] == "http://127.0.0.1:1" and p["grpc_inference_port"] == "4"
    assert p["grpc_inference_address"] == p["grpc_management_address"] == "127.0.0.1"
    assert p["enable_model_api"] == "false" and p["disable_token_authorization"] == "false"
    assert p["metrics_mode"] == "prometheus"
    # Java reads "\\Q" as \Q: the store path, quoted for Java's regex
    assert p["allowed_urls"] == "file://\\\\Q" + str((tmp_path / "store").resolve()) + "\\\\E/.*"
    assert p["load_models"] == "digits=digits.mar"
    # the documented template has the same keys as the generated file
    assert set(_props(TEMPLATE.read_text())) == set(p)


def test_missing_java_names_what_to_install(monkeypatch, tmp_path):
    monkeypatch.delenv("JAVA_HOME", raising=False)
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(ServerError, match="openjdk-17"):
        find_java()


def test_stop_without_a_server(tmp_path):
    assert stop(tmp_path) is False
    (tmp_path / "server.pid").write_text("999999")
    assert stop(tmp_path) is False and not (tmp_path / "server.pid").exists()


def test_free_ports_are_distinct():
    ports = free_ports(5)
    assert len(set(ports)) == 5


def test_host_binds_only_the_inference_listeners(tmp_path):
    """`xai serve --host 0.0.0.0`: REST and gRPC inference on every interface; management and
    metrics stay on loopback unless --management-host / --metrics-host say otherwise."""
    cfg = ServerConfig(model_store=tmp_path, models=["m"], state_dir=tmp_path / "s", host="0.0.0.0")
    cfg = cfg.resolved()
    p = _props(render_config(cfg, tmp_path / "metrics.yaml"))
    assert p["inference_address"] == "http://0.0.0.0:8080" and p["grpc_inference_address"] == "0.0.0.0"
    assert p["management_address"] == "http://127.0.0.1:8081" and p["grpc_management_address"] == "127.0.0.1"
    assert p["metrics_address"] == "http://127.0.0.1:8082"
    cfg2 = ServerConfig(
        model_store=tmp_path, models=["m"], host="0.0.0.0", management_host="10.0.0.5", metrics_host="0.0.0.0"
    ).resolved()
    p2 = _props(render_config(cfg2, tmp_path / "metrics.yaml"))
    assert p2["management_address"] == "http://10.0.0.5:8081" and p2["grpc_management_address"] == "10.0.0.5"
    assert p2["metrics_address"] == "http://0.0.0.0:8082"
    assert cfg2.metrics_url == "http://127.0.0.1:8082" and cfg2.management_url == "http://10.0.0.5:8081"


def test_log_config_keeps_the_files_and_drops_per_request_lines():
    """`xai serve`'s log4j2.xml: TorchServe's files, nothing below WARN from the per-request loggers."""
    import xml.etree.ElementTree as ET

    from xai_serve.serving.server import DEFAULT_JVM_ARGS, LOG4J2_XML

    root = ET.fromstring(LOG4J2_XML)
    files = {a.get("name") for a in root.iter("RollingFile")}
    assert {"access_log", "model_log", "ts_log"} <= files
    levels = {lg.get("name"): lg.get("level") for lg in root.iter("Logger")}
    assert levels["MODEL_LOG"] == "info" and levels["ACCESS_LOG"] == "info"  # tracebacks, one line a request
    for chatty in (
        "org.pytorch.serve.wlm.WorkerThread",
        "org.pytorch.serve.wlm.BatchAggregator",
        "org.pytorch.serve.job",
    ):
        assert levels[chatty] == "warn"
    assert all(
        lg.get("additivity") == "false" for lg in root.iter("Logger") if lg.find("AppenderRef") is not None
    )
    assert ServerConfig(model_store=Path(".")).jvm_args == DEFAULT_JVM_ARGS
