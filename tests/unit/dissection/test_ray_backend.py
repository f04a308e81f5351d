"""`xai dissect run --backend ray` on a real local Ray cluster (2 CPUs): the parts run as Ray tasks
and the merged outputs equal an in-process run's."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from xai_serve.cli import app
from xai_serve.dissection.runner import DissectConfig, dissect

LAYER = "features.36"
COMPARED = ("results.csv", "history.log", "report.html", "summary.json")


@pytest.mark.slow
def test_ray_dissection_equals_local(tmp_path: Path, checkpoint, broden) -> None:
    import ray  # a missing ray FAILS the test

    config = DissectConfig(checkpoint=str(checkpoint), broden=str(broden[0]), layer=LAYER, units_per_part=8)
    local = tmp_path / "local"
    dissect(local, config, log=lambda _m: None)
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    try:
        out = tmp_path / "ray"
        args = ["dissect", "run", "--checkpoint", str(checkpoint), "--broden", str(broden[0])]
        args += ["--layer", LAYER, "--out", str(out), "--units-per-part", "8", "--backend", "ray"]
        res = CliRunner().invoke(app, args)
        assert res.exit_code == 0, res.output
    finally:
        ray.shutdown()
    for name in COMPARED:
        assert (local / name).read_text() == (out / name).read_text(), name
    for page in sorted((local / "report").glob("*.html")):
        assert page.read_text() == (out / "report" / page.name).read_text()
    assert len(list((out / "parts").glob("*.json"))) == 8
