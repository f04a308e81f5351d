"""The demo's second engine (``app/served_v2.py``): the same archive on the kserve engine answers the
first image over v2 with the maps the service computes in process, and the report section says which
engine answered."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image
from xai_client.requests import build_request
from xai_client.results import explanation_from_proto

from xai_serve.app.served_v2 import METHODS, kserve_check, render_section
from xai_serve.serving.archive import build_archive
from xai_serve.serving.served import build_service, open_archive

pytestmark = pytest.mark.integration


def test_kserve_check_matches_and_renders(tmp_path, checkpoint_factory) -> None:
    mar = build_archive(checkpoint_factory(tmp_path / "ckpt"), "digits", store=tmp_path / "store")
    buf = io.BytesIO()
    Image.fromarray((np.random.default_rng(3).random((28, 28)) * 255).astype(np.uint8)).save(buf, "PNG")
    png = buf.getvalue()
    unpacked = open_archive(mar, tmp_path / "unpacked")
    service, _ = build_service(
        "digits", unpacked.model_dir, unpacked.serialized_file, unpacked.xai_config, None
    )
    reference = explanation_from_proto(
        service.handle([build_request(png, methods=list(METHODS), top_k=3)])[0]
    )
    check = kserve_check(tmp_path / "store", "digits", png, reference, log=lambda *_: None)
    assert check.error == "" and check.same_prediction
    assert set(check.max_abs_diff) == set(METHODS)
    assert max(check.max_abs_diff.values()) < 1e-5
    section = render_section(check)
    assert (
        "KServe model server" in section and "TorchServe" in section and "Open Inference Protocol" in section
    )
