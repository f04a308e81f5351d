"""Whole-layer runs: outputs, shard + merge == one run, worker processes == one run, resume after
SIGKILL == one run, typed errors, the CLI."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from xai_serve.dissection import activations as acts
from xai_serve.dissection.runner import DissectConfig, dissect, merge
from xai_serve.errors import InvalidArgumentError, InvalidParameterError, NotFoundError
from xai_serve.jobs.shard import Shard

LAYER = "features.36"  # 64 units at 7x7 for a 28x28 input
COMPARED = ("results.csv", "history.log", "report.html", "summary.json")


def _config(checkpoint: Path, broden: Path, **kw) -> DissectConfig:
    return DissectConfig(checkpoint=str(checkpoint), broden=str(broden), layer=LAYER, **kw)


def _quiet(_msg: str) -> None:
    pass


def _sha(path: Path) -> str:
    import hashlib

    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture(scope="module")
def reference(tmp_path_factory, checkpoint, broden) -> Path:
    out = tmp_path_factory.mktemp("ref") / "run"
    summary = dissect(out, _config(checkpoint, broden[0], units_per_part=8), log=_quiet)
    assert summary is not None and summary["units"] == 64
    return out


def _same(a: Path, b: Path) -> None:
    for name in COMPARED:
        assert (a / name).read_text() == (b / name).read_text(), name
    for page in sorted((a / "report").glob("*.html")):
        assert page.read_text() == (b / "report" / page.name).read_text()


def test_outputs(reference: Path) -> None:
    lines = (reference / "results.csv").read_text().splitlines()
    assert lines[0] == "layer,unit,formula,iou,single,single_iou,length,primitives,mask_pixels,category"
    assert len(lines) == 65
    feats = acts.load(reference)
    assert feats.shape == (24, 64, 7, 7)
    t = np.load(reference / "thresholds.npy")
    assert t[5] == np.quantile(np.asarray(feats[:, 5], np.float64), 0.995)
    assert (reference / "report" / "units_00000-00008.html").is_file()
    assert (reference / "report" / "img" / "unit_00063.png").is_file()
    history = (reference / "history.log").read_text()
    assert "unit 0 length 1:" in history and "unit 63 length 3:" in history
    html = (reference / "report.html").read_text()
    assert "units interpretable" in html and "report/units_00056-00064.html" in html


def test_shard_and_merge_equal_one_run(tmp_path, checkpoint, broden, reference) -> None:
    out = tmp_path / "sharded"
    config = _config(checkpoint, broden[0], units_per_part=8)
    assert dissect(out, config, shard=Shard(1, 3), log=_quiet) is None
    with pytest.raises(InvalidArgumentError, match="not done yet"):
        merge(out)
    assert dissect(out, config, shard=Shard(0, 3), log=_quiet) is None
    assert dissect(out, config, shard=Shard(2, 3), log=_quiet) is not None  # the last shard merges
    _same(reference, out)
    (out / "results.csv").unlink()
    merge(out)
    _same(reference, out)


def test_worker_processes_equal_one_run(tmp_path, checkpoint, broden, reference) -> None:
    out = tmp_path / "workers"
    dissect(out, _config(checkpoint, broden[0], units_per_part=8), workers=2, log=_quiet)
    _same(reference, out)


def test_resume_after_sigkill_equals_one_run(tmp_path, checkpoint, broden, reference) -> None:
    out = tmp_path / "killed"
    cmd = [
        sys.executable,
        "-m",
        "xai_serve.cli",
        "dissect",
        "run",
        "--checkpoint",
        str(checkpoint),
        "--broden",
        str(broden[0]),
        "--layer",
        LAYER,
        "--out",
        str(out),
        "--units-per-part",
        "8",
    ]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 600
    parts = out / "parts"
    while time.monotonic() < deadline and proc.poll() is None:
        if parts.is_dir() and len(list(parts.glob("*.json"))) >= 1:
            break
        time.sleep(0.005)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    done = len(list(parts.glob("*.json")))
    assert 1 <= done < 8, f"the run was not interrupted mid-way ({done} parts)"
    assert not (out / "results.csv").exists()
    result = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    assert f"{done} already done" in result.stderr
    assert not list(out.rglob("*.tmp"))
    # the reference was computed with the same parts; report pages name the same paths except --out
    for name in ("results.csv", "history.log", "summary.json"):
        assert (reference / name).read_text() == (out / name).read_text(), name


def test_errors(tmp_path, checkpoint, broden, reference) -> None:
    with pytest.raises(InvalidArgumentError, match="different configuration"):
        dissect(reference, _config(checkpoint, broden[0], units_per_part=8, beam=3), log=_quiet)
    with pytest.raises(NotFoundError, match="no module 'nope'"):
        dissect(tmp_path / "x", DissectConfig(str(checkpoint), str(broden[0]), "nope"), log=_quiet)
    with pytest.raises(InvalidParameterError):
        dissect(tmp_path / "y", _config(checkpoint, broden[0], quantile=1.5), log=_quiet)
    # a continued run must use the same weights (the checkpoint file may have been retrained in place)
    from xai_serve.dissection.runner import open_run

    open_run(tmp_path / "w", _config(checkpoint, broden[0], weights_sha256="a" * 64))
    with pytest.raises(InvalidArgumentError, match="weights_sha256"):
        open_run(tmp_path / "w", _config(checkpoint, broden[0], weights_sha256="b" * 64))
    record = json.loads((reference / "run.json").read_text())
    assert record["config"]["weights_sha256"] == _sha(checkpoint / "best.pt")


def test_cli(tmp_path, checkpoint, broden) -> None:
    from xai_serve.cli import app

    runner = CliRunner()
    synth = tmp_path / "synth"
    r = runner.invoke(
        app, ["dissect", "synth", str(synth), "--images", "6", "--image-size", "28", "--mask-size", "14"]
    )
    assert r.exit_code == 0, r.output
    out = tmp_path / "cli"
    args = [
        "dissect",
        "run",
        "--checkpoint",
        str(checkpoint),
        "--broden",
        str(synth),
        "--layer",
        LAYER,
        "--out",
        str(out),
        "--units-per-part",
        "32",
        "--max-length",
        "2",
    ]
    r = runner.invoke(app, [*args, "--shard", "0/2"])
    assert r.exit_code == 0, r.output
    assert json.loads(r.stdout.strip().splitlines()[-1])["merged"] is False
    r = runner.invoke(app, ["dissect", "merge", str(out)])
    assert r.exit_code == 2 and "not done yet" in r.output
    r = runner.invoke(app, [*args, "--shard", "1/2"])
    assert r.exit_code == 0, r.output
    r = runner.invoke(app, ["dissect", "merge", str(out)])
    assert r.exit_code == 0 and json.loads(r.stdout)["units"] == 64
    r = runner.invoke(
        app,
        [
            "dissect",
            "run",
            "--checkpoint",
            str(checkpoint),
            "--broden",
            str(tmp_path / "none"),
            "--layer",
            LAYER,
            "--out",
            str(tmp_path / "z"),
        ],
    )
    assert r.exit_code == 2 and "index.csv" in r.output
