"""`xai serve` / `xai serve --stop` as a user runs them: generated config, key file, readiness,
and stopping Java plus its workers by PID (a second TorchServe, on its own ports and state dir)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import psutil
import pytest

from xai_serve.serving.archive import build_archive
from xai_serve.serving.server import free_ports, read_pid

pytestmark = [pytest.mark.integration, pytest.mark.slow]


def _xai(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    cmd = [sys.executable, "-c", "from xai_serve.cli import main; main()", *args]
    return subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, timeout=300, check=False)


def test_serve_and_stop_with_the_cli(tmp_path, checkpoint_factory):
    ckpt = checkpoint_factory(tmp_path / "ckpt", seed=1)
    build_archive(ckpt, "other", store=tmp_path / "model_store")
    ports = [str(p) for p in free_ports(5)]
    state = tmp_path / ".xai-serve"
    try:
        done = _xai(
            "serve",
            "--inference-port",
            ports[0],
            "--management-port",
            ports[1],
            "--metrics-port",
            ports[2],
            "--grpc-port",
            ports[3],
            "--grpc-management-port",
            ports[4],
            cwd=tmp_path,
        )
        assert done.returncode == 0, done.stderr + done.stdout
        assert "key file" in done.stdout and str(state / "key_file.json") in done.stdout
        pid = read_pid(state)
        assert pid is not None
        java = psutil.Process(pid)
        workers = java.children(recursive=True)
        assert workers, "no worker processes"
        assert any(
            Path(sys.executable).name in " ".join(w.cmdline()) or sys.executable in w.cmdline()
            for w in workers
        )
        # the client finds the key file in ./.xai-serve by default
        import os

        from xai_client import Client

        old = os.getcwd()
        os.chdir(tmp_path)
        try:
            with Client(f"127.0.0.1:{ports[3]}", management_address=f"127.0.0.1:{ports[4]}") as c:
                assert [m.name for m in c.models()] == ["other"]
        finally:
            os.chdir(old)
    finally:
        stopped = _xai("serve", "--stop", cwd=tmp_path)
    assert stopped.returncode == 0 and "stopped" in stopped.stdout
    _gone, alive = psutil.wait_procs([java, *workers], timeout=10)
    assert not alive
    assert not (state / "server.pid").exists() and not (state / "key_file.json").exists()
