"""Resumable, loss-free runs: a run killed with SIGKILL mid-way and restarted with --resume
produces byte-identical outputs to an uninterrupted run (no duplicated or missing rows)."""

from __future__ import annotations

import csv
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from typer.testing import CliRunner

from xai_serve.cli import app
from xai_serve.errors import InvalidArgumentError
from xai_serve.jobs.rundir import RunDir

_ARGS = (
    "evaluate faithfulness --samples 12 --batch-size 2 --kinds pixel,region --step 8 --patch-size 7 "
    "--methods gradient,input_x_gradient --baseline uniform --orders morf,lerf,random --seed 5"
)
ARGS = _ARGS.split(" ")


def _cli(ckpt: Path, out: Path, *extra: str) -> list[str]:
    return [
        sys.executable,
        "-m",
        "xai_serve.cli",
        *ARGS,
        "--checkpoint",
        str(ckpt),
        "--out",
        str(out),
        *extra,
    ]


def _files(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


@pytest.mark.slow
def test_killed_run_resumes_to_identical_results(digits_checkpoint, tmp_path):
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    ref, killed = tmp_path / "ref", tmp_path / "killed"
    # the reference runs in a fresh process like the killed run: same torch thread count, so the same
    # floating-point reduction order (the pytest process's thread setting may differ)
    subprocess.run(_cli(digits_checkpoint, ref), check=True, env=env, capture_output=True)

    proc = subprocess.Popen(
        _cli(digits_checkpoint, killed), env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    parts = killed / "parts"
    deadline = time.monotonic() + 240
    while time.monotonic() < deadline and proc.poll() is None:
        if parts.exists() and len(list(parts.glob("*.npz"))) >= 1:
            break
        time.sleep(0.01)
    assert proc.poll() is None, "the run finished before it could be killed"
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    n_done = len(list(parts.glob("*.npz")))
    assert 1 <= n_done < 6
    assert not (killed / "scores.csv").exists()
    (parts / ".batch-00005.npz.999.tmp").write_bytes(b"half a file")  # a torn write, as a crash leaves

    # restarting without --resume refuses to touch the run
    again = CliRunner().invoke(app, _cli(digits_checkpoint, killed)[3:])
    assert again.exit_code == 2 and "--resume" in again.output

    subprocess.run(_cli(digits_checkpoint, killed, "--resume"), check=True, env=env, capture_output=True)
    a, b = _files(ref), _files(killed)
    assert sorted(a) == sorted(b)
    for name in a:
        assert a[name] == b[name], name
    with open(killed / "scores.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    keys = [(r["index"], r["method"], r["kind"], r["order"]) for r in rows]
    assert len(keys) == len(set(keys)) == 12 * 2 * 2 * 3


def test_resume_requires_same_configuration(tmp_path):
    RunDir.open(tmp_path / "r", {"seed": 1, "samples": 4})
    with pytest.raises(InvalidArgumentError, match="seed"):
        RunDir.open(tmp_path / "r", {"seed": 2, "samples": 4}, resume=True)
    with pytest.raises(InvalidArgumentError, match="--resume"):
        RunDir.open(tmp_path / "r", {"seed": 1, "samples": 4})
    run = RunDir.open(tmp_path / "r", {"seed": 1, "samples": 4}, resume=True)
    run.save_part("batch-00000", {"a": __import__("numpy").arange(3)})
    assert run.load_part("batch-00000")["a"].tolist() == [0, 1, 2]
    run = RunDir.open(tmp_path / "r", {"seed": 3}, overwrite=True)
    assert not run.has_part("batch-00000")
