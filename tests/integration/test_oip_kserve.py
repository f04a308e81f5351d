"""The kserve engine (``xai serve --engine kserve``) driven by clients nobody on this project wrote:
tritonclient (HTTP and gRPC) and the kserve package's REST and gRPC inference clients, each in a
process of its own (``oip_clients.py``). Predictions and explanations equal the in-process service's;
bad input (shape, datatype, unknown method or parameter, over a cost limit, no token) gets the
protocol's error and the server lives. Also: xai_client's own ``protocol="v2"`` over REST and gRPC,
loopback binding, a JSON body without Content-Type, Prometheus metrics, stop by PID.
"""

from __future__ import annotations

import base64
import http.client
import json
import subprocess
import sys
import urllib.request
from pathlib import Path

import numpy as np
import psutil
import pytest
from xai_client.requests import build_request

from xai_serve.serving.archive import ArchiveOptions, build_archive
from xai_serve.serving.limits import CostLimits
from xai_serve.serving.served import build_service, open_archive
from xai_serve.serving.v2 import kserve_engine
from xai_serve.testing import write_checkpoint

pytestmark = pytest.mark.integration

MODEL = "tiny"
CLIENTS = Path(__file__).with_name("oip_clients.py")
HTTP_STATUS = {"shape": 400, "dtype": 400, "method": 400, "parameter": 400, "cost": 413, "token": 401}
GRPC_CODE = {
    "shape": "INVALID_ARGUMENT",
    "dtype": "INVALID_ARGUMENT",
    "method": "INVALID_ARGUMENT",
    "parameter": "INVALID_ARGUMENT",
    "cost": "RESOURCE_EXHAUSTED",
    "token": "UNAUTHENTICATED",
}


@pytest.fixture(scope="module")
def kserve_server(tmp_path_factory: pytest.TempPathFactory, request: pytest.FixtureRequest):
    root = tmp_path_factory.mktemp("kserve")
    ckpt = write_checkpoint(root / "ckpt")
    options = ArchiveOptions(limits=CostLimits(max_rows=4))  # top5 is over the limit
    mar = build_archive(ckpt, MODEL, store=root / "store", options=options)
    cfg = kserve_engine.KServeConfig.on_free_ports(root / "store", [MODEL], root / "state")
    request.addfinalizer(lambda: kserve_engine.stop(root / "state"))  # before start: runs on any failure
    server = kserve_engine.start(cfg, timeout=180)
    return server, mar


@pytest.fixture(scope="module")
def in_process(kserve_server, tmp_path_factory: pytest.TempPathFactory):
    _, mar = kserve_server
    unpacked = open_archive(mar, tmp_path_factory.mktemp("unpacked"))
    service, _ = build_service(MODEL, unpacked.model_dir, unpacked.serialized_file, unpacked.xai_config, None)
    return service


def _reference(service):
    image = np.random.default_rng(0).random((1, 1, 28, 28)).astype(np.float32)  # oip_clients.IMAGE
    resp = service.handle([build_request(image[0], methods=["gradient", "lrp"], target=3, top_k=10)])[0]
    probs = np.zeros(10, np.float32)
    for s in resp.prediction.top:
        probs[s.index] = s.probability
    maps = {h.method: np.frombuffer(h.values.data, np.float32).reshape(h.values.shape) for h in resp.heatmaps}
    return probs, maps, dict(resp.heatmaps[1].stats)


def _run_client(kind: str, address: str, token: str) -> dict:
    done = subprocess.run(
        [sys.executable, str(CLIENTS), kind, address, MODEL, token],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


@pytest.mark.parametrize("kind", ["triton-http", "triton-grpc", "kserve-rest", "kserve-grpc"])
def test_standard_clients(kind: str, kserve_server, in_process) -> None:
    server, _ = kserve_server
    cfg = server.config
    address = cfg.grpc_address if kind.endswith("grpc") else f"{cfg.connect_host}:{cfg.http_port}"
    got = _run_client(kind, address, cfg.token() or "")
    probs, maps, lrp_stats = _reference(in_process)
    np.testing.assert_allclose(np.asarray(got["probabilities"])[0], probs, rtol=1e-5, atol=1e-7)
    for method in ("gradient", "lrp"):
        np.testing.assert_allclose(
            np.asarray(got[f"heatmap_{method}"])[0], maps[method], rtol=1e-5, atol=1e-8
        )
    assert json.loads(got["lrp_parameters"]["conservation"])[0] == pytest.approx(lrp_stats["conservation"])
    assert "credential" not in got["lrp_parameters"]  # this archive carries none
    grpc = kind.endswith("grpc")
    for case, (status, message) in got["errors"].items():
        expected = GRPC_CODE[case] if grpc else str(HTTP_STATUS[case])
        assert expected in status, (case, status, message)
        assert message, case
    assert got["alive_after"] is True
    if kind.startswith("triton"):  # an encoded PNG as BYTES (over REST: binary data after the JSON)
        req = build_request(base64.b64decode(got["png"]), methods=["gradient"], target=3)
        h = in_process.handle([req])[0].heatmaps[0]
        expected = np.frombuffer(h.values.data, np.float32).reshape(h.values.shape)
        np.testing.assert_allclose(np.asarray(got["png_heatmap_gradient"])[0], expected, rtol=1e-5, atol=1e-8)
    assert server.process is not None and server.process.poll() is None


@pytest.mark.parametrize("transport", ["http", "grpc"])
def test_xai_client_v2_equals_in_process(transport: str, kserve_server, in_process) -> None:
    server, _ = kserve_server
    probs, maps, _ = _reference(in_process)
    image = np.random.default_rng(0).random((1, 1, 28, 28)).astype(np.float32)
    with server.config.client(transport) as client:
        ex = client.explain(MODEL, image[0], ["gradient", "lrp"], target=3)
        assert client.health() == "Healthy"
        assert "lrp" in client.methods(MODEL)
    np.testing.assert_allclose([s.probability for s in ex.prediction.top], sorted(probs)[::-1][:5], rtol=1e-5)
    for h in ex.heatmaps:
        np.testing.assert_allclose(h.values, maps[h.method], rtol=1e-5, atol=1e-8)


def test_json_without_content_type_metrics_and_binding(kserve_server) -> None:
    server, _ = kserve_server
    cfg = server.config
    body = {
        "inputs": [{"name": "input", "shape": [1, 1, 28, 28], "datatype": "FP32", "data": [0.5] * 784}],
        "parameters": {"xai_methods": "gradient"},
    }
    conn = http.client.HTTPConnection(cfg.connect_host, cfg.http_port, timeout=60)  # no Content-Type sent
    conn.request(
        "POST",
        f"/v2/models/{MODEL}/infer",
        json.dumps(body).encode(),
        {"Authorization": f"Bearer {cfg.token()}"},
    )
    resp = conn.getresponse()
    assert resp.status == 200, resp.read()
    answer = json.loads(resp.read())
    conn.close()
    names = {o["name"] for o in answer["outputs"]}
    assert {"probabilities", "predicted_class", "heatmap_gradient", "evidence_gradient"} <= names
    with urllib.request.urlopen(f"{cfg.inference_url}/metrics", timeout=10) as resp:
        text = resp.read().decode()
    assert "request_predict_seconds" in text  # KServe's own
    assert f'xai_explanations_total{{method="gradient",model="{MODEL}",status="ok"}}' in text  # the service's
    proc = psutil.Process(server.pid)
    conns = proc.net_connections() if hasattr(proc, "net_connections") else proc.connections()
    listening = [c.laddr for c in conns if c.status == psutil.CONN_LISTEN]
    assert {a.port for a in listening} >= {cfg.http_port, cfg.grpc_port}
    assert all(a.ip in ("127.0.0.1", "::ffff:127.0.0.1") for a in listening), listening


def test_cli_predicts_and_explains_over_v2(kserve_server, tmp_path: Path, capsys) -> None:
    from xai_client.cli import main

    server, _ = kserve_server
    cfg = server.config
    png = tmp_path / "digit.png"
    from PIL import Image

    Image.fromarray((np.random.default_rng(1).random((28, 28)) * 255).astype(np.uint8)).save(png)
    common = [
        "--model",
        MODEL,
        "--protocol",
        "v2",
        "--address",
        cfg.grpc_address,
        "--key-file",
        str(cfg.key_file),
    ]
    assert main(["predict", str(png), *common]) == 0
    assert "digit" in capsys.readouterr().out
    assert main(["explain", str(png), *common, "--method", "lrp", "--out", str(tmp_path / "out")]) == 0
    assert any(p.suffix == ".npy" for p in (tmp_path / "out").rglob("*"))
