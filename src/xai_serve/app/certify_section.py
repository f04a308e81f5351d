"""The certification section of ``make demo``: credentials of the served methods measured on a few
validation images (``xai certify`` with a small sample: the scores are indicative, their spread is in
credentials.json)."""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from pathlib import Path

from xai_serve.evaluation.certify import CertifyOptions, certify

DEMO_SAMPLES = 8  # 8 validation images keep certification within ~60 s of CPU


def demo_certify(
    checkpoint: str | Path,
    out: str | Path,
    *,
    methods: Sequence[str] | None = None,
    log: Callable[[str], None] = print,
) -> Path:
    """Certify ``methods`` (default: every served heatmap method) of ``checkpoint`` on ``DEMO_SAMPLES``
    validation images into ``out``; returns the credentials.json path for the archive."""
    tic = time.perf_counter()
    path = certify(
        checkpoint,
        out,
        CertifyOptions(methods=methods, samples=DEMO_SAMPLES, batch_size=DEMO_SAMPLES),
        overwrite=True,
        log=log,
    )
    assert path is not None  # no shard: the whole run
    log(f"certified in {time.perf_counter() - tic:.1f} s: {path}")
    return path
