"""The serving half of the demo against the session's TorchServe: every method for each image,
overlays written, the report links them."""

from __future__ import annotations

import json

import pytest

from xai_serve.explain import list_methods

pytestmark = pytest.mark.integration


def test_report_over_grpc_with_every_method(served, demo_report):
    report = demo_report
    out = report.parent
    text = report.read_text()
    methods = sorted(list_methods())
    results = json.loads((out / "results.json").read_text())
    assert len(results) == 2
    for row in results:
        assert sorted(row["overlays"]) == methods
        for fname in row["overlays"].values():
            assert (out / "images" / fname).read_bytes().startswith(b"\x89PNG")
            assert f"images/{fname}" in text
        assert len(row["prediction"]) == 3
    assert served.config.key_file.exists()  # a server passed in is left running
