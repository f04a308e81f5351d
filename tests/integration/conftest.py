"""One real TorchServe for the whole integration session (a cold start costs ~13 s on 2 cores).

It serves ``tiny``: a random-init digits SimpleNet archived by ``xai archive``'s builder with
batchSize 4 and maxBatchDelay 100 ms, on free loopback ports, with a private state/temp directory
and token auth on. The finalizer stops Java and its workers by PID, also when a test failed.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import pytest

from xai_serve.serving.archive import ArchiveOptions, build_archive
from xai_serve.serving.server import ServerConfig, start, stop
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
        return self.config.client(protocol, **kwargs)


@pytest.fixture(scope="session")
def checkpoint_factory():
    """``checkpoint_factory(dir, seed=0) -> dir``: the shared tiny checkpoint writer
    (:func:`xai_serve.testing.write_checkpoint`: model.json + best.pt of a random SimpleNet)."""
    return write_checkpoint


def start_private_server(
    request: pytest.FixtureRequest,
    root: Path,
    archives: Sequence[tuple[Path, str, ArchiveOptions]],
    *,
    timeout: float = 180,
) -> Served:
    """One TorchServe of its own: each ``(checkpoint, name, options)`` archived by ``xai archive``'s
    builder into ``root/store``, all of them served on free loopback ports with the private state dir
    ``root/state``. Its stop (by PID) is a finalizer of ``request``, registered before the start so it
    also runs when the start or a test fails. ``Served.checkpoint`` is the first archive's."""
    store = root / "store"
    for ckpt, name, options in archives:
        build_archive(ckpt, name, store=store, options=options)
    cfg = ServerConfig.on_free_ports(store, [name for _, name, _ in archives], root / "state")
    request.addfinalizer(lambda: stop(root / "state"))  # registered before start: runs on any failure
    server = start(cfg, timeout=timeout)
    return Served(server.config, archives[0][0], server.pid)


@pytest.fixture(scope="session")
def private_server():
    """``private_server(request, root, [(checkpoint, name, ArchiveOptions), ...], timeout=180) -> Served``:
    :func:`start_private_server`, for modules whose archives the session server cannot take (its
    model API is off by design)."""
    return start_private_server


def offline_short_curve(checkpoint: Path, images: Sequence[bytes], answers: Sequence, method: str):
    """The live monitor's short deletion curve computed offline: the model of ``checkpoint`` rebuilt as
    the server does, the encoded ``images`` decoded as the server does, the served maps and targets of
    ``method`` from ``answers`` (xai_client explanations); returns the
    :class:`~xai_serve.evaluation.live_checks.ShortCurve`."""
    import numpy as np
    import torch
    from xai_client.requests import build_request

    from xai_serve.evaluation.live_checks import short_deletion
    from xai_serve.models import ModelCard, canonicalise, create_model, load_state_dict_file
    from xai_serve.serving.inputs import decode_input

    card = ModelCard.load(checkpoint / "model.json")
    model = create_model(card.model, **card.model_kwargs)
    model.load_state_dict(load_state_dict_file(checkpoint / "best.pt"))
    canonicalise(model)
    model.eval()
    x = torch.stack([decode_input(build_request(img).input, card).x for img in images])
    heat = torch.from_numpy(np.stack([a.heatmap(method).values for a in answers]))
    targets = torch.tensor([a.heatmap(method).target for a in answers])
    return short_deletion(model, x, targets, heat)


@pytest.fixture(scope="session")
def live_offline():
    """``live_offline(checkpoint, images, answers, method) -> ShortCurve``: :func:`offline_short_curve`,
    the reference the served ``xai_live_*`` figures are compared with (both engines' live tests)."""
    return offline_short_curve


@pytest.fixture(scope="session")
def served(tmp_path_factory: pytest.TempPathFactory, request: pytest.FixtureRequest) -> Served:
    root = tmp_path_factory.mktemp("torchserve")
    ckpt = write_checkpoint(root / "ckpt")
    options = ArchiveOptions(batch_size=BATCH_SIZE, max_batch_delay_ms=MAX_BATCH_DELAY_MS)
    return start_private_server(request, root, [(ckpt, MODEL, options)])


@pytest.fixture(scope="session")
def demo_report(served: Served, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The demo report (:func:`xai_serve.app.serving_section.serve_and_report`: 2 test images, every method
    over gRPC) from the session server, written once into ``<tmp>/demo`` for the report tests."""
    from xai_serve.app.serving_section import serve_and_report

    return serve_and_report(
        served.checkpoint,
        out_dir=tmp_path_factory.mktemp("demo_report") / "demo",
        name=MODEL,
        n_images=2,
        server=served.config,
        log=lambda *_: None,
    )
