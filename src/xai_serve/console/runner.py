"""Running the console's app under uvicorn: in the foreground for ``xai console`` (Ctrl-C stops it
cleanly), or in a background thread for tests and benchmarks (:func:`running`)."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import uvicorn

HOST = "127.0.0.1"  # loopback only: the console holds the model server's tokens


def _server(app: Any, port: int) -> uvicorn.Server:
    config = uvicorn.Config(app, host=HOST, port=port, log_level="warning", access_log=False, lifespan="off")
    return uvicorn.Server(config)


def serve(app: Any, port: int, *, announce: Callable[[str], None] = print) -> None:
    """Serve ``app`` on ``127.0.0.1:port`` until Ctrl-C (or SIGTERM); ``announce`` gets the URL once
    the socket listens."""
    server = _server(app, port)

    def watch() -> None:
        while not server.started and not server.should_exit:
            time.sleep(0.05)
        if server.started:
            announce(f"console: http://{HOST}:{_bound_port(server) or port}/  (Ctrl-C stops it)")

    threading.Thread(target=watch, daemon=True).start()
    server.run()


def _bound_port(server: uvicorn.Server) -> int | None:
    for s in getattr(server, "servers", []) or []:
        for sock in s.sockets:
            return int(sock.getsockname()[1])
    return None


@contextmanager
def running(app: Any, port: int = 0, *, timeout: float = 20.0) -> Iterator[str]:
    """Serve ``app`` in a background thread on a free loopback port (``port=0``); yields its base URL and
    stops the server (and joins the thread) on exit."""
    server = _server(app, port)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + timeout
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            server.should_exit = True
            thread.join(timeout)
            raise RuntimeError("the console did not start")
        time.sleep(0.02)
    try:
        yield f"http://{HOST}:{_bound_port(server)}"
    finally:
        server.should_exit = True
        thread.join(timeout)
