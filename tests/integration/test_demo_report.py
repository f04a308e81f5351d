"""The serving half of the demo against the session's TorchServe: every method for each image,
overlays written, the report links them."""

from __future__ import annotations

import json

import pytest

from xai_serve.explain import list_methods
from xai_serve.serving.demo import serve_and_report

pytestmark = pytest.mark.integration


def test_report_over_grpc_with_every_method(served, tmp_path):
    report = serve_and_report(
        served.checkpoint,
        out_dir=tmp_path / "demo",
        name="tiny",
        n_images=2,
        server=served.config,
        log=lambda *_: None,
    )
    text = report.read_text()
    methods = sorted(list_methods())
    results = json.loads((tmp_path / "demo" / "results.json").read_text())
    assert len(results) == 2
    for row in results:
        assert sorted(row["overlays"]) == methods
        for fname in row["overlays"].values():
            assert (tmp_path / "demo" / "images" / fname).read_bytes().startswith(b"\x89PNG")
            assert f"images/{fname}" in text
        assert len(row["prediction"]) == 3
    assert served.config.key_file.exists()  # a server passed in is left running
