"""The README's "Open Inference Protocol" examples run as written: the first bash block (`xai serve
--engine kserve`, curl), the tritonclient example, then `xai serve --stop`, in a directory holding
`model_store/digits.mar`, with only the ports 8080/8081 swapped for free ones."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from xai_serve.serving.archive import build_archive
from xai_serve.serving.server import free_ports
from xai_serve.serving.v2 import kserve_engine

pytestmark = pytest.mark.integration

README = Path(__file__).resolve().parents[2] / "README.md"


def _blocks() -> list[tuple[str, str]]:
    text = README.read_text()
    start = text.index("## Open Inference Protocol")
    section = text[start : text.index("\n## ", start + 10)]
    return re.findall(r"```(bash|python)\n(.*?)```", section, flags=re.S)


def test_readme_examples_run_as_written(tmp_path: Path, checkpoint_factory) -> None:
    blocks = _blocks()
    assert [kind for kind, _ in blocks] == ["bash", "python", "bash"]
    build_archive(checkpoint_factory(tmp_path / "ckpt"), "digits", store=tmp_path / "model_store")
    http, grpc = free_ports(2)

    def ports(code: str) -> str:
        return code.replace("8080", str(http)).replace("8081", str(grpc))

    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}
    try:
        serve = subprocess.run(
            ["bash", "-euo", "pipefail", "-c", ports(blocks[0][1])],
            cwd=tmp_path,
            env=env,
            capture_output=True,
            text=True,
            timeout=300,
        )
        assert serve.returncode == 0, serve.stdout + serve.stderr
        answer = json.loads((tmp_path / "answer.json").read_text())
        names = {o["name"]: o["shape"] for o in answer["outputs"]}
        assert names["heatmap_gradient"] == names["heatmap_lrp"] == [1, 2, 1, 28, 28]  # top2
        assert "[('probabilities', [1, 10])" in serve.stdout
        triton = subprocess.run(
            [sys.executable, "-c", ports(blocks[1][1])],
            cwd=tmp_path,
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert triton.returncode == 0, triton.stderr
        first, second = triton.stdout.strip().splitlines()
        assert first.endswith("(1, 1, 28, 28)")
        assert len(json.loads(second)) == 1
        stop = subprocess.run(
            ["bash", "-c", blocks[2][1]], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120
        )
        assert stop.returncode == 0 and "stopped" in stop.stdout, stop.stdout + stop.stderr
    finally:
        kserve_engine.stop(tmp_path / ".xai-serve")
