"""The container, started outside Docker (no engine here): the Dockerfile's ENTRYPOINT + CMD run as
they are (only /home/xai mapped to a temporary home, and free ports appended so that parallel test
runs do not collide), TorchServe comes up with the config.properties `xai serve` renders for that
command line, the HEALTHCHECK's command succeeds, `--host 0.0.0.0` exposes inference only, and
SIGTERM (docker stop) shuts it down cleanly."""

from __future__ import annotations

import json
import re
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest

from xai_serve.serving.archive import build_archive
from xai_serve.serving.server import free_ports, stop

pytestmark = [pytest.mark.integration, pytest.mark.slow]

DOCKERFILE = Path(__file__).resolve().parents[2] / "Dockerfile"
IMAGE_HOME = "/home/xai"
PORT_OPTIONS = (
    "--inference-port",
    "--management-port",
    "--metrics-port",
    "--grpc-port",
    "--grpc-management-port",
)


def _instruction(name: str) -> str:
    text = re.sub(r"\\\n", " ", DOCKERFILE.read_text())
    (line,) = [ln.strip() for ln in text.splitlines() if ln.strip().upper().startswith(name + " ")]
    return line[len(name) :].strip()


def _props(text: str) -> dict[str, str]:
    return dict(ln.split("=", 1) for ln in text.splitlines() if ln and not ln.startswith("#"))


def _outside_address() -> str | None:
    for addrs in psutil.net_if_addrs().values():
        for a in addrs:
            if a.family == socket.AF_INET and not a.address.startswith("127."):
                return a.address
    return None


def _connects(host: str, port: int) -> bool:
    with socket.socket() as s:
        s.settimeout(2)
        return s.connect_ex((host, port)) == 0


def test_image_command_config_and_healthcheck(tmp_path, checkpoint_factory):
    home = tmp_path / "home"
    store = home / "model_store"
    build_archive(checkpoint_factory(tmp_path / "ckpt"), "digits", store=store)
    entrypoint, cmd = json.loads(_instruction("ENTRYPOINT")), json.loads(_instruction("CMD"))
    assert entrypoint == ["xai", "serve"]
    argv = [str(Path(sys.executable).parent / "xai"), *entrypoint[1:], *cmd]
    argv = [a.replace(IMAGE_HOME, str(home)) for a in argv]
    ports = free_ports(5)
    for opt, port in zip(PORT_OPTIONS, ports, strict=True):
        argv += [opt, str(port)]
    inference, management, metrics = ports[0], ports[1], ports[2]
    state = home / ".xai-serve"
    proc = subprocess.Popen(argv, cwd=home, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        lines = []
        deadline = time.monotonic() + 300
        assert proc.stdout is not None
        while time.monotonic() < deadline:
            line = proc.stdout.readline()
            if not line:
                break
            lines.append(line)
            if "TorchServe ready" in line:
                break
        assert any("TorchServe ready" in ln for ln in lines), "".join(lines)
        assert proc.poll() is None, "--foreground must keep the container's main process alive"

        p = _props((state / "config.properties").read_text())
        assert (
            p["inference_address"] == f"http://0.0.0.0:{inference}"
            and p["grpc_inference_address"] == "0.0.0.0"
        )
        assert p["management_address"] == f"http://127.0.0.1:{management}"
        assert p["grpc_management_address"] == "127.0.0.1"
        assert p["metrics_address"] == f"http://127.0.0.1:{metrics}"
        assert p["model_store"] == str(store) and p["load_models"] == "digits=digits.mar"
        assert p["disable_token_authorization"] == "false"

        health = _instruction("HEALTHCHECK")
        check = json.loads(health[health.index("CMD") + 3 :].strip())
        assert check[0] == "python"
        check = [sys.executable, *(a.replace(":8082/", f":{metrics}/") for a in check[1:])]
        assert subprocess.run(check, timeout=30).returncode == 0

        outside = _outside_address()
        if outside is not None:  # a machine with a non-loopback interface: --host splits the listeners
            assert _connects(outside, inference)
            assert not _connects(outside, management) and not _connects(outside, metrics)
        assert _connects("127.0.0.1", management)

        proc.send_signal(signal.SIGTERM)  # docker stop
        assert proc.wait(timeout=120) == 0
        assert subprocess.run(check, timeout=30).returncode != 0  # health check fails once stopped
    finally:
        if proc.poll() is None:
            proc.kill()
        stop(state)


def test_image_runs_the_kserve_engine_with_one_variable(tmp_path, checkpoint_factory):
    """XAI_SERVE_ENGINE=kserve: the same ENTRYPOINT + CMD start KServe's model server (v2), the
    HEALTHCHECK passes on its readiness endpoint, and SIGTERM stops it cleanly."""
    import os

    from xai_serve.serving.v2 import kserve_engine

    home = tmp_path / "home"
    build_archive(checkpoint_factory(tmp_path / "ckpt"), "digits", store=home / "model_store")
    entrypoint, cmd = json.loads(_instruction("ENTRYPOINT")), json.loads(_instruction("CMD"))
    argv = [str(Path(sys.executable).parent / "xai"), *entrypoint[1:], *cmd]
    argv = [a.replace(IMAGE_HOME, str(home)) for a in argv]
    http, grpc = free_ports(2)
    argv += ["--http-port", str(http), "--grpc-port", str(grpc)]
    env = {**os.environ, "XAI_SERVE_ENGINE": "kserve"}
    state = home / ".xai-serve"
    proc = subprocess.Popen(
        argv, cwd=home, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )
    try:
        lines = []
        deadline = time.monotonic() + 300
        assert proc.stdout is not None
        while time.monotonic() < deadline:
            line = proc.stdout.readline()
            if not line:
                break
            lines.append(line)
            if "KServe model server ready" in line:
                break
        assert any("KServe model server ready" in ln for ln in lines), "".join(lines)
        assert proc.poll() is None, "--foreground must keep the container's main process alive"
        assert (state / "key_file.json").is_file()  # token auth on by default
        health = _instruction("HEALTHCHECK")
        check = json.loads(health[health.index("CMD") + 3 :].strip())
        check = [sys.executable, *(a.replace(":8080/", f":{http}/") for a in check[1:])]
        assert subprocess.run(check, timeout=30, env=env).returncode == 0
        assert _connects("127.0.0.1", grpc)
        proc.send_signal(signal.SIGTERM)  # docker stop
        assert proc.wait(timeout=120) == 0
        assert subprocess.run(check, timeout=30, env=env).returncode != 0
    finally:
        if proc.poll() is None:
            proc.kill()
        kserve_engine.stop(state)
