"""Backends of `xai evaluate`: `--shard K/N` slices merged with `--resume`, and `--backend ray` on a
real local Ray cluster (2 CPUs), give byte-identical outputs to the in-process run, also when a
Ray worker is killed mid-task (Ray retries it; the retry skips the parts already stored)."""

from __future__ import annotations

import os
import signal
import threading
import time
from pathlib import Path

import psutil
import pytest
import torch
from typer.testing import CliRunner

from xai_serve.cli import app

ARGS = [
    "evaluate",
    "faithfulness",
    "--samples",
    "16",
    "--batch-size",
    "2",
    "--kinds",
    "pixel,region",
    "--step",
    "2",
    "--patch-size",
    "7",
    "--methods",
    "gradient,input_x_gradient",
    "--baseline",
    "uniform",
    "--orders",
    "morf,lerf,random",
    "--seed",
    "5",
]


def _invoke(ckpt: Path, out: Path, *extra: str) -> None:
    res = CliRunner().invoke(app, [*ARGS, "--checkpoint", str(ckpt), "--out", str(out), *extra])
    assert res.exit_code == 0, res.output


def _files(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def _assert_identical(a: Path, b: Path) -> None:
    fa, fb = _files(a), _files(b)
    assert sorted(fa) == sorted(fb)
    assert "report.html" in fa and "parts/batch-00007.npz" in fa
    for name in fa:
        assert fa[name] == fb[name], name


@pytest.fixture(scope="module")
def reference(digits_checkpoint, tmp_path_factory) -> Path:
    """The in-process run, with one torch thread (as Ray tasks run)."""
    out = tmp_path_factory.mktemp("ref") / "run"
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        _invoke(digits_checkpoint, out)
    finally:
        torch.set_num_threads(threads)
    return out


def test_shards_merged_equal_the_local_run(digits_checkpoint, reference, tmp_path):
    out = tmp_path / "sharded"
    metrics = tmp_path / "prom" / "job.prom"
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        for k in (1, 0, 2):  # any order; each stores only its slice and assembles nothing
            _invoke(digits_checkpoint, out, "--shard", f"{k}/3", "--metrics-file", str(metrics))
            assert not (out / "summary.csv").exists()
        assert len(list((out / "parts").glob("*.npz"))) == 8
        _invoke(digits_checkpoint, out, "--resume")  # the merge: every part is stored, nothing computed
    finally:
        torch.set_num_threads(threads)
    _assert_identical(reference, out)
    assert sorted(p.name for p in metrics.parent.iterdir()) == [f"job-shard-{k}-of-3.prom" for k in range(3)]
    assert (
        'xai_job_items_total{job="faithfulness",shard="1/3"} 6.0'
        in (metrics.parent / "job-shard-1-of-3.prom").read_text()
    )


def test_bad_shard_is_a_clear_error(digits_checkpoint, tmp_path):
    res = CliRunner().invoke(
        app, [*ARGS, "--checkpoint", str(digits_checkpoint), "--out", str(tmp_path / "x"), "--shard", "3/3"]
    )
    assert res.exit_code == 2 and "K/N" in res.output


@pytest.fixture(scope="module")
def ray_cluster():
    import ray  # a missing ray FAILS the test (no skip)

    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    yield ray
    ray.shutdown()


@pytest.mark.slow
def test_ray_backend_equals_the_local_run(digits_checkpoint, reference, ray_cluster, tmp_path):
    out = tmp_path / "ray"
    _invoke(digits_checkpoint, out, "--backend", "ray", "--workers", "2")
    _assert_identical(reference, out)


def _shard_workers() -> list[psutil.Process]:
    """Ray worker processes of this test's cluster that are running a shard task right now."""
    me = os.getpid()
    found = []
    for p in psutil.process_iter(["cmdline"]):
        try:
            if "ray::shard_task" in " ".join(p.info["cmdline"] or []) and me in {q.pid for q in p.parents()}:
                found.append(p)
        except psutil.Error:
            continue
    return found


@pytest.mark.slow
def test_ray_task_killed_mid_run_is_retried_with_identical_result(
    digits_checkpoint, reference, ray_cluster, tmp_path
):
    out = tmp_path / "ray_killed"
    error: list[BaseException] = []

    def job() -> None:
        try:
            _invoke(digits_checkpoint, out, "--backend", "ray", "--workers", "2")
        except BaseException as e:  # reported to the test thread
            error.append(e)

    thread = threading.Thread(target=job)
    thread.start()
    killed = None
    deadline = time.monotonic() + 300
    while killed is None and thread.is_alive() and time.monotonic() < deadline:
        parts = list((out / "parts").glob("*.npz")) if (out / "parts").exists() else []
        workers = _shard_workers() if parts else []
        if workers:
            killed = workers[0].pid
            os.kill(killed, signal.SIGKILL)  # the worker dies mid-task, between two parts
        time.sleep(0.02)
    thread.join(timeout=600)
    assert not error, error
    assert killed is not None, "no shard task was running when a part appeared: nothing was killed"
    assert not psutil.pid_exists(killed) or psutil.Process(killed).status() == psutil.STATUS_ZOMBIE
    _assert_identical(reference, out)
