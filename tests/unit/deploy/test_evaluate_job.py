"""deploy/kubernetes/evaluate-job.yaml (Indexed Job, one `--shard K/N` per pod) and its merge Job:
they parse, the shard count matches the Job's completions, every argument is an option of the
command, and the merge runs the same command without --shard, with --resume."""

from __future__ import annotations

import re
from pathlib import Path

import yaml
from typer.testing import CliRunner

from xai_serve.cli import app

DEPLOY = Path(__file__).resolve().parents[3] / "deploy" / "kubernetes"


def _job(name: str) -> dict:
    (doc,) = [d for d in yaml.safe_load_all((DEPLOY / name).read_text()) if d]
    assert doc["apiVersion"] == "batch/v1" and doc["kind"] == "Job"
    return doc


def _container(job: dict) -> dict:
    (c,) = job["spec"]["template"]["spec"]["containers"]
    return c


def _options(*command: str) -> set[str]:
    res = CliRunner().invoke(app, [*command, "--help"], env={"COLUMNS": "250"})
    assert res.exit_code == 0, res.output
    return set(re.findall(r"--[a-z][a-z-]*", res.output))


def test_indexed_job_runs_one_shard_per_index():
    job = _job("evaluate-job.yaml")
    spec = job["spec"]
    assert spec["completionMode"] == "Indexed" and spec["template"]["spec"]["restartPolicy"] == "Never"
    c = _container(job)
    assert c["command"] == ["xai"] and c["args"][0] == "evaluate"
    args = c["args"]
    shard = args[args.index("--shard") + 1]
    assert shard == f"$(JOB_COMPLETION_INDEX)/{spec['completions']}"  # K/N with N = completions
    env = {e["name"]: e for e in c["env"]}
    assert "job-completion-index" in env["JOB_COMPLETION_INDEX"]["valueFrom"]["fieldRef"]["fieldPath"]
    flags = {a for a in args if a.startswith("--")}
    assert flags <= _options(*args[:2]), flags - _options(*args[:2])
    assert job["spec"]["template"]["spec"]["securityContext"]["runAsNonRoot"] is True


def test_merge_job_is_the_same_command_with_resume():
    shards, merge = _container(_job("evaluate-job.yaml")), _container(_job("evaluate-merge-job.yaml"))
    a, b = list(shards["args"]), list(merge["args"])
    i = a.index("--shard")
    del a[i : i + 2]
    assert "--shard" not in b and "--resume" in b
    b.remove("--resume")
    assert a == b
    assert shards["volumeMounts"] == merge["volumeMounts"] and shards["image"] == merge["image"]
