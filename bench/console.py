"""Explanation console overhead: a four-method explanation of a digit through ``POST /api/explain`` (upload
check, the client call, PNG overlays and ``.npy`` data URLs, JSON) against the same call made with
``xai_client`` directly, to the same TorchServe (the digits MLP of ``bench.servers``), in the same run. The
console runs as ``xai console`` in a process of its own, as it does for a user."""

from __future__ import annotations

import io
import os
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from bench import servers
from bench.common import Measurement, summarise

SUITE = "console"
METHODS = ["gradient", "input_x_gradient", "guided_backprop", "lrp"]


def _digit_png() -> bytes:
    import numpy as np
    from PIL import Image

    buf = io.BytesIO()
    pixels = (np.random.default_rng(0).random((28, 28)) * 255).astype(np.uint8)
    Image.fromarray(pixels).save(buf, "PNG")
    return buf.getvalue()


def _form(image: bytes) -> tuple[bytes, str]:
    boundary = "benchconsole"
    fields = [("model", servers.DIGITS), ("methods", ",".join(METHODS)), ("target", "")]
    out = io.BytesIO()
    for name, value in fields:
        out.write(
            f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n{value}\r\n'.encode()
        )
    out.write(f'--{boundary}\r\nContent-Disposition: form-data; name="image"; filename="d.png"\r\n'.encode())
    out.write(b"Content-Type: image/png\r\n\r\n" + image + f"\r\n--{boundary}--\r\n".encode())
    return out.getvalue(), f"multipart/form-data; boundary={boundary}"


@contextmanager
def console_process(cfg: Any, timeout: float = 60.0) -> Iterator[str]:
    """``xai console`` for ``cfg``'s server on a free port, in its own process (stopped by its PID)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    cmd = [sys.executable, "-m", "xai_serve.cli", "console", "--address", cfg.grpc_address]
    cmd += ["--management-address", cfg.grpc_management_address, "--key-file", str(cfg.key_file)]
    cmd += ["--port", str(port)]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=dict(os.environ))
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + timeout
        while True:
            try:
                with urllib.request.urlopen(url + "/api/health", timeout=5) as resp:
                    resp.read()
                break
            except (urllib.error.URLError, ConnectionError):
                if proc.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"xai console did not start: {proc.stderr.read()!r}") from None
                time.sleep(0.1)
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def run(quick: bool) -> list[Measurement]:
    server = servers.digits()
    cfg = server.config
    image = _digit_png()
    body, ctype = _form(image)
    n = 20 if quick else 60
    direct: list[float] = []
    console: list[float] = []
    with server.client("grpc") as client, console_process(cfg) as url:

        def via_client() -> None:
            client.explain(servers.DIGITS, image, METHODS)

        def via_console() -> None:
            req = urllib.request.Request(
                url + "/api/explain", data=body, headers={"Content-Type": ctype}, method="POST"
            )
            with urllib.request.urlopen(req, timeout=120) as resp:
                resp.read()

        for _ in range(3):
            via_client()
            via_console()
        for _ in range(n):  # interleaved: both see the same load
            t0 = time.perf_counter()
            via_client()
            direct.append(time.perf_counter() - t0)
            t0 = time.perf_counter()
            via_console()
            console.append(time.perf_counter() - t0)
    case = f"digits MLP, 4 methods ({', '.join(METHODS)}), gRPC"
    base = "xai_client directly"
    med, q1, q3 = summarise(direct, 1e3)
    rows = [Measurement(SUITE, case, base, "ms", med, q1, q3, n=n)]
    med, q1, q3 = summarise(console, 1e3)
    rows.append(
        Measurement(
            SUITE,
            case,
            "through the console (POST /api/explain)",
            "ms",
            med,
            q1,
            q3,
            n=n,
            baseline=base,
            target="<= 1.5x",
        )
    )
    return rows
