"""A console (real uvicorn on a free loopback port) over a model server that is not there: the port of a
socket that was bound and closed. What needs a real TorchServe is in tests/integration/test_console*.py."""

from __future__ import annotations

import socket
from collections.abc import Iterator

import pytest

from xai_serve.console.app import create_app
from xai_serve.console.backend import Backend, ServerOptions
from xai_serve.console.runner import running


def dead_address() -> str:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return f"127.0.0.1:{s.getsockname()[1]}"


@pytest.fixture(scope="module")
def console_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    key_file = tmp_path_factory.mktemp("keys") / "key_file.json"
    key_file.write_text('{"inference": {"key": "secret-inference"}, "management": {"key": "secret-mgmt"}}')
    backend = Backend(
        ServerOptions(address=dead_address(), protocol="http", key_file=str(key_file), timeout=2.0)
    )
    with running(create_app(backend, max_upload=64 * 1024)) as url:
        yield url
    backend.close()
