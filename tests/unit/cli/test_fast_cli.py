"""A fast command line: importing the `xai` CLI and asking any (sub-)command for --help imports no
torch, torchvision or TorchServe. The walk covers every command module registered in cli.py, so a
new module that imports torch at its top fails here."""

from __future__ import annotations

import json
import subprocess
import sys
import time

HEAVY = ("torch", "torchvision", "ts", "onnx", "onnxruntime", "ray", "matplotlib", "scipy", "sklearn")

WALK = r"""
import json, sys
import typer
from typer.testing import CliRunner
import xai_serve.cli as cli

after_import = sorted(m for m in HEAVY if m in sys.modules)
root = typer.main.get_command(cli.app)
paths = []
def walk(cmd, path):
    paths.append(path)
    for name, sub in (getattr(cmd, "commands", None) or {}).items():
        walk(sub, path + [name])
walk(root, [])
codes = {}
for path in paths:
    res = CliRunner().invoke(cli.app, path + ["--help"])
    codes[" ".join(path) or "xai"] = res.exit_code
print(json.dumps({"after_import": after_import, "after_help": sorted(m for m in HEAVY if m in sys.modules),
                  "codes": codes}))
"""


def test_cli_import_and_every_help_import_no_torch():
    code = f"HEAVY = {HEAVY!r}\n{WALK}"
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=300, check=True
    )
    res = json.loads(out.stdout.strip().splitlines()[-1])
    assert res["after_import"] == [], res["after_import"]
    assert res["after_help"] == [], res["after_help"]
    codes = res["codes"]
    assert {"xai", "evaluate", "evaluate faithfulness", "serve", "train"} <= set(codes)
    assert all(c == 0 for c in codes.values()), codes


def test_xai_help_is_fast():
    """Measured wall time of `python -m xai_serve.cli --help` (an interpreter start included); the
    bound is loose because the test machine is shared, the figure is printed."""
    t0 = time.perf_counter()
    out = subprocess.run(
        [sys.executable, "-m", "xai_serve.cli", "--help"], capture_output=True, text=True, timeout=120
    )
    dt = time.perf_counter() - t0
    print(f"xai --help: {dt:.2f} s")
    assert out.returncode == 0 and "evaluate" in out.stdout
    assert dt < 10
