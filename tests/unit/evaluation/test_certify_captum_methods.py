"""``xai certify`` takes the Captum-style methods like every heatmap method (its default list is the
registry's heatmap methods): integrated_gradients, smoothgrad and occlusion get credentials."""

from __future__ import annotations

import json

from xai_serve.evaluation import credentials as cred
from xai_serve.evaluation.certify import certifiable_methods

NEW = ["integrated_gradients", "occlusion", "smoothgrad"]


def test_new_methods_are_certifiable_by_default() -> None:
    assert set(NEW) <= set(certifiable_methods())


def test_certify_measures_the_new_methods(digits_checkpoint, tmp_path) -> None:
    from typer.testing import CliRunner

    from xai_serve.cli import app

    args = ["certify", str(digits_checkpoint), "--methods", ",".join(NEW), "--samples", "8"]
    args += ["--batch-size", "8", "--out", str(tmp_path / "cert")]
    res = CliRunner().invoke(app, args)
    assert res.exit_code == 0, res.output
    summary = json.loads(res.stdout.strip().splitlines()[-1])
    assert sorted(summary["passed"] + summary["failed"]) == NEW
    assert sorted(cred.load(summary["credentials"])["methods"]) == NEW
