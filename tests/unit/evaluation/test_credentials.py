"""Explanation credentials: the sanity rule on constructed cases, the measurement through the
evaluation runner, and the credentials.json format (write, load, validate, served summary)."""

from __future__ import annotations

import json
import math

import pytest
import torch

from xai_serve.errors import CheckpointError
from xai_serve.evaluation import credentials as cred
from xai_serve.evaluation.certify import CertifyOptions, context_runner, measure
from xai_serve.evaluation.context import EvalContext
from xai_serve.evaluation.sanity_rule import SANITY_THRESHOLD, SanityRule
from xai_serve.hashing import file_sha256


def test_rule_verdicts():
    rule = SanityRule()
    assert rule.threshold == SANITY_THRESHOLD == 0.5
    assert rule.check([0.1, 0.2, float("nan")]) == pytest.approx((0.15, True))
    score, ok = rule.check([0.9, 0.7])
    assert score == pytest.approx(0.8) and not ok
    assert not rule.passes(0.5)  # strictly below
    score, ok = rule.check([float("nan")])
    assert math.isnan(score) and not ok  # undefined never passes
    assert SanityRule(0.9).passes(0.8)
    with pytest.raises(ValueError):
        SanityRule(float("nan"))
    assert not rule.passes(-0.8) and rule.passes(-0.2)  # the magnitude decides (see sanity_rule)
    with pytest.raises(ValueError):
        SanityRule(-0.5)


def test_certification_and_report_verdict_agree_on_negative_correlations(tmp_path):
    """One rule for credentials.json and report.html: a strongly negative rank correlation of the
    absolute maps (the map's ranking reversed by randomisation, still tied to the trained one) fails
    in both, a weak negative one passes in both."""
    from xai_serve.evaluation.store import write_csv
    from xai_serve.evaluation.suites.randomisation import verdict

    scores = {"reversed": -0.8, "unrelated": -0.2, "unchanged": 0.9}
    rows = [
        {
            "method": m,
            "mode": "cascading",
            "variant": "standard",
            "level": level,
            "layer": "original" if level == 0 else "fc",
            "spearman_abs_mean": 1.0 if level == 0 else s,
            "spearman_abs_std": 0.0,
            "spearman_mean": 1.0 if level == 0 else s,
            "ssim_mean": 1.0,
            "n": 4,
        }
        for m, s in scores.items()
        for level in (0, 1)
    ]
    write_csv(tmp_path / "summary.csv", rows)
    text = verdict(tmp_path)
    assert text is not None
    rule = SanityRule()
    for m in scores:
        certified = cred.sanity_record(rows, m, ["fc"], rule)["pass"]
        reported = f"{m} passes" in text
        assert reported == (f"{m} <b>fails</b>" not in text)
        assert certified == reported, m
    assert [cred.sanity_record(rows, m, ["fc"], rule)["pass"] for m in scores] == [False, True, False]
    # a certification with another threshold records it in the run; the report then judges with it too
    import json

    (tmp_path / "run.json").write_text(json.dumps({"config": {"options": {"threshold": 0.1}}}))
    strict = verdict(tmp_path)
    assert strict is not None and "unrelated <b>fails</b>" in strict and "< 0.1)" in strict
    assert not cred.sanity_record(rows, "unrelated", ["fc"], SanityRule(0.1))["pass"]


def _ctx(model, x, y, attributions) -> EvalContext:
    n = 24
    return EvalContext(
        model,
        x[:n],
        y[:n],
        torch.arange(n),
        [str(i) for i in range(10)],
        [0.3],
        [0.4],
        attributions,
    )


def _measure(ctx: EvalContext, out, resume: bool = False):
    run = context_runner(ctx, seed=0, resume=resume)
    return measure(
        run, out, CertifyOptions(samples=24, batch_size=8), list(ctx.attributions), ctx.images.shape
    )


def _weight_blind(x: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    return x.detach().clone()  # an "explanation" that never looks at the model


@pytest.fixture(scope="module")
def records(trained_digits_mlp, gradient_attribution, tmp_path_factory):
    """Both suites through the runner on a trained digits MLP: the plain gradient and a method
    that ignores the weights (it returns the input itself)."""
    model, x, y = trained_digits_mlp
    ctx = _ctx(model, x, y, {"gradient": gradient_attribution(model), "weight_blind": _weight_blind})
    out = tmp_path_factory.mktemp("certify")
    recs, meta = _measure(ctx, out)
    return recs, meta, out


def test_weight_blind_method_fails_and_trained_gradient_passes(records):
    recs, meta, out = records
    blind, grad = recs["weight_blind"]["sanity"], recs["gradient"]["sanity"]
    assert not blind["pass"] and blind["spearman_abs"] == pytest.approx(1.0, abs=1e-9)
    assert grad["pass"] and grad["spearman_abs"] < SANITY_THRESHOLD
    # the curve starts at the original (1.0) and has one entry per randomised layer
    assert grad["spearman_abs_by_level"][0] == pytest.approx(1.0)
    assert len(grad["spearman_abs_by_level"]) == len(grad["levels"]) == meta["randomisation"]["levels"] + 1
    assert (out / "randomisation" / "report.html").is_file() and (
        out / "faithfulness" / "report.html"
    ).is_file()


def test_faithfulness_scores_are_measured(records):
    recs, meta, _ = records
    assert meta["faithfulness"]["kind"] == "pixel"  # 8x8 inputs: pixel flipping, one pixel per step
    assert meta["faithfulness"]["features_in_step"] == 1
    g = recs["gradient"]["faithfulness"]
    for key in ("aopc_morf", "aopc_lerf", "abpc"):
        assert math.isfinite(g[key])
    # the gradient of a trained model ranks pixels better than chance: removing its most relevant
    # pixels first hurts more than removing its least relevant ones
    assert g["aopc_morf"] > g["aopc_lerf"] and g["abpc"] > 0


def test_resume_recomputes_nothing(records, trained_digits_mlp, gradient_attribution):
    recs, _meta, out = records
    model, x, y = trained_digits_mlp
    calls = []

    def counting(x_, t_):
        calls.append(1)
        return _weight_blind(x_, t_)

    ctx = _ctx(model, x, y, {"gradient": gradient_attribution(model), "weight_blind": counting})
    again, _ = _measure(ctx, out, resume=True)
    assert calls == [] and again == recs


def _doc(recs, sha="ab" * 32):
    return cred.build(
        methods=recs,
        rule=SanityRule().describe(),
        config={"checkpoint_sha256": sha, "seed": 0, "samples": 24, "split": "val"},
        versions={"torch": torch.__version__},
    )


def test_file_round_trip_and_served_summary(records, tmp_path):
    recs, _meta, _ = records
    path = cred.write(tmp_path / "credentials.json", _doc(recs))
    doc = cred.load(path)
    assert doc["format"] == cred.FORMAT and doc["rule"]["threshold"] == SANITY_THRESHOLD
    s = cred.summary(doc, "gradient")
    assert set(s) == set(cred.SUMMARY_FIELDS) and s["certified"] and s["sanity_pass"]
    assert s["sanity_spearman"] == recs["gradient"]["sanity"]["spearman_abs"]
    assert cred.summary(doc, "lrp") == {"certified": False}
    assert cred.summary(None, "gradient") == {"certified": False}
    assert cred.failed_check(doc, "gradient") is None
    msg = cred.failed_check(doc, "weight_blind")
    assert "cascading-randomisation-spearman-abs" in msg and "1.000" in msg and "< 0.5" in msg


def test_malformed_files_are_refused(records, tmp_path):
    recs, _meta, _ = records
    p = tmp_path / "c.json"
    p.write_text("{not json")
    with pytest.raises(CheckpointError, match="not valid JSON"):
        cred.load(p)
    p.write_text(json.dumps({"format": "other"}))
    with pytest.raises(CheckpointError, match="not an xai-serve credentials file"):
        cred.load(p)
    doc = _doc(recs)
    del doc["methods"]["gradient"]["sanity"]["pass"]
    p.write_text(json.dumps(doc))
    with pytest.raises(CheckpointError, match="no sanity verdict"):
        cred.load(p)
    with pytest.raises(CheckpointError, match="not found"):
        cred.load(tmp_path / "missing.json")


def test_nan_is_never_written_or_served(records, tmp_path):
    recs, _meta, _ = records
    doc = _doc(recs)
    doc["methods"]["gradient"]["faithfulness"]["abpc"] = None  # not measurable
    doc["methods"]["gradient"]["sanity"]["spearman_abs"] = None
    s = cred.summary(doc, "gradient")
    assert "abpc" not in s and "sanity_spearman" not in s
    doc["methods"]["gradient"]["faithfulness"]["abpc"] = float("nan")
    with pytest.raises(ValueError):
        cred.write(tmp_path / "nan.json", doc)


def test_faithfulness_plan_by_input_size():
    assert cred.faithfulness_plan((1, 28, 28)) == {"kind": "pixel", "features_in_step": 13}
    assert cred.faithfulness_plan((3, 224, 224)) == {"kind": "region", "patch_size": 14, "region_steps": 64}


def _certify_cli(*args: str):
    from typer.testing import CliRunner

    from xai_serve.cli import app

    res = CliRunner().invoke(app, ["certify", *args])
    assert res.exit_code == 0, res.output
    return json.loads(res.stdout.strip().splitlines()[-1])


def test_cli_shards_merge_to_the_in_process_credentials(digits_checkpoint, tmp_path):
    common = [str(digits_checkpoint), "--methods", "gradient,input_x_gradient", "--samples", "8"]
    common += ["--batch-size", "4"]
    whole = _certify_cli(*common, "--out", str(tmp_path / "whole"))
    sharded = str(tmp_path / "sharded")
    for k in (0, 1):
        assert _certify_cli(*common, "--out", sharded, "--shard", f"{k}/2", "--resume")["shard"] == f"{k}/2"
    merged = _certify_cli(*common, "--out", sharded, "--resume")
    a, b = cred.load(whole["credentials"]), cred.load(merged["credentials"])
    assert a["methods"] == b["methods"] and a["samples"] == b["samples"] == 8 and a["split"] == "val"
    assert sorted(whole["passed"] + whole["failed"]) == ["gradient", "input_x_gradient"]
    assert a["checkpoint_sha256"] == file_sha256(digits_checkpoint / "best.pt")


def test_report_table_shows_credentials_side_by_side(records):
    from xai_serve.evaluation.certify import credentials_table

    recs, _meta, _ = records
    doc = _doc(recs)
    summaries = {m: cred.summary(doc, m) for m in ("gradient", "weight_blind", "lrp")}
    page = credentials_table(summaries, doc)
    head = page.index("<th>gradient</th>"), page.index("<th>lrp</th>"), page.index("<th>weight_blind</th>")
    assert head == tuple(sorted(head))  # one column per method, in name order
    assert page.count("✓ pass") == 1 and page.count("✗ fail") == 1 and page.count("not certified") == 1
    assert f"{recs['gradient']['sanity']['spearman_abs']:.3f}" in page and "threshold 0.5" in page
