"""Fixtures of the load, fault and fuzz tests (tests/load/).

Every test here is marked ``slow`` and ``integration``. Each test module that needs a server gets
one TorchServe (the ``served`` fixture), started through the serving lifecycle API
(``xai_serve.serving.server``) on free loopback ports with a private state/temp dir, and stopped by
PID in the fixture's teardown, also when a test fails.

Environment knobs (defaults are what ``make test`` runs):
  XAI_LOAD_SECONDS    duration of the sustained-load run (60)
  XAI_LOAD_CLIENTS    concurrent closed-loop clients (16)
  XAI_LOAD_REQUESTS   requests over which worker RSS growth is measured (10000)
  XAI_FUZZ_DECODER    hypothesis examples against the in-process decoder (8000)
  XAI_FUZZ_SERVICE    hypothesis batches against the in-process service (200)
  XAI_FUZZ_LIVE       payloads sent to the live handler over gRPC and HTTP (1000)
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
if str(HERE) not in sys.path:  # for load_support / fuzz_payloads (pytest uses --import-mode=importlib)
    sys.path.insert(0, str(HERE))

from load_support import ServedModel, served_digits  # noqa: E402


@pytest.fixture(scope="module")
def served(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServedModel]:
    """One TorchServe per test module serving the digits test model; the module's ``SERVE_OPTIONS``
    (batch_size, max_batch_delay_ms, workers, response_timeout_s) configure its archive."""
    options = dict(getattr(request.module, "SERVE_OPTIONS", {}))
    root = tmp_path_factory.mktemp(request.module.__name__.rsplit(".", 1)[-1])
    with served_digits(root, **options) as model:
        yield model
