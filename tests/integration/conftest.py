"""One real TorchServe for the whole integration session (a cold start costs ~13 s on 2 cores).

It serves ``tiny``: a random-init digits SimpleNet archived by ``xai archive``'s builder with
batchSize 4 and maxBatchDelay 100 ms, on free loopback ports, with a private state/temp directory
and token auth on. The finalizer stops Java and its workers by PID, also when a test failed.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import pytest

from xai_serve.serving.archive import ArchiveOptions, build_archive
from xai_serve.serving.server import ServerConfig, free_ports, start, stop
from xai_serve.testing import write_checkpoint

MODEL = "tiny"
BATCH_SIZE = 4
MAX_BATCH_DELAY_MS = 100


@dataclass
class Served:
    config: ServerConfig
    checkpoint: Path
    pid: int

    @property
    def tokens(self) -> dict[str, str]:
        data = json.loads(self.config.key_file.read_text())
        return {k: v["key"] for k, v in data.items()}

    def client(self, protocol: str, **kwargs):
        from xai_client import Client

        c = self.config
        address = c.grpc_address if protocol == "grpc" else c.inference_url
        maddr = f"{c.host}:{c.grpc_management_port}" if protocol == "grpc" else c.management_url
        kwargs.setdefault("key_file", c.key_file)
        return Client(address, protocol, management_address=maddr, **kwargs)


@pytest.fixture(scope="session")
def checkpoint_factory():
    """``checkpoint_factory(dir, seed=0) -> dir``: the shared tiny checkpoint writer
    (:func:`xai_serve.testing.write_checkpoint`: model.json + best.pt of a random SimpleNet)."""
    return write_checkpoint


@pytest.fixture(scope="session")
def served(tmp_path_factory: pytest.TempPathFactory, request: pytest.FixtureRequest) -> Served:
    root = tmp_path_factory.mktemp("torchserve")
    ckpt = write_checkpoint(root / "ckpt")
    store = root / "store"
    build_archive(
        ckpt,
        MODEL,
        store=store,
        options=ArchiveOptions(batch_size=BATCH_SIZE, max_batch_delay_ms=MAX_BATCH_DELAY_MS),
    )
    ports = free_ports(5)
    cfg = ServerConfig(
        model_store=store,
        models=[MODEL],
        state_dir=root / "state",
        inference_port=ports[0],
        management_port=ports[1],
        metrics_port=ports[2],
        grpc_port=ports[3],
        grpc_management_port=ports[4],
    )
    request.addfinalizer(lambda: stop(root / "state"))  # registered before start: runs on any failure
    server = start(cfg, timeout=180)
    return Served(server.config, ckpt, server.pid)
