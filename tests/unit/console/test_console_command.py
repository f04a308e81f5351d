"""``xai console`` as a user runs it: it prints its URL, serves the page, and Ctrl-C (SIGINT) stops it
cleanly with exit status 0; ``--engine`` outside torchserve|kserve is refused."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import urllib.request


def _free_port() -> int:
    """A loopback port nothing listens on (bound, then closed)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def dead_address() -> str:
    return f"127.0.0.1:{_free_port()}"


def test_prints_its_url_and_stops_on_ctrl_c() -> None:
    port = _free_port()
    cmd = [sys.executable, "-m", "xai_serve.cli", "console", "--address", dead_address(), "--port", str(port)]
    proc = subprocess.Popen(
        cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=dict(os.environ)
    )
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        assert line.strip().startswith(f"console: http://127.0.0.1:{port}/"), line
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=10) as resp:
            assert b"xai-serve console" in resp.read()
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=20)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 0, err
    assert "console stopped" in out
    assert "Traceback" not in err


def test_unknown_engine_is_refused() -> None:
    cmd = [
        sys.executable,
        "-m",
        "xai_serve.cli",
        "console",
        "--engine",
        "triton",
        "--port",
        str(_free_port()),
    ]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=60)
    assert done.returncode == 2
    assert "engine must be one of torchserve, kserve" in done.stderr
