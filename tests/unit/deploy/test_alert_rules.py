"""The shipped Prometheus alert rules (deploy/prometheus/xai-alerts.yaml): valid for promtool, and their
unit tests on synthetic series pass. promtool (Debian's prometheus package, `make sysdeps`) is
required: a missing promtool fails these tests."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from xai_serve.serving.live_metrics import BY_NAME

RULES = Path(__file__).resolve().parents[3] / "deploy" / "prometheus"


def promtool() -> str:
    exe = shutil.which("promtool")
    if exe is None:
        pytest.fail("promtool is not installed (apt-get install prometheus; `make sysdeps`)")
    return exe


def test_rules_pass_promtool_check():
    done = subprocess.run(
        [promtool(), "check", "rules", "xai-alerts.yaml"], cwd=RULES, capture_output=True, text=True
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "SUCCESS: 3 rules found" in done.stdout


def test_rules_unit_tests_pass():
    done = subprocess.run(
        [promtool(), "test", "rules", "xai-alerts.test.yaml"], cwd=RULES, capture_output=True, text=True
    )
    assert done.returncode == 0, done.stdout + done.stderr


def test_rules_use_only_defined_metrics():
    doc = yaml.safe_load((RULES / "xai-alerts.yaml").read_text())
    exprs = " ".join(r["expr"] for g in doc["groups"] for r in g["rules"])
    used = set(re.findall(r"xai_live_\w+", exprs))
    assert used and used <= set(BY_NAME), used - set(BY_NAME)
