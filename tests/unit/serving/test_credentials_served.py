"""Credentials in the archive and the worker (real .mar, TorchServe context double): sha256 recorded
beside the weights', tampered / unrecorded / foreign files refused at load, the credential on every
heatmap, describe, the overlay badge and the refusal mode (typed FAILED_PRECONDITION naming the
failed check while passing methods are served)."""

from __future__ import annotations

import hashlib
import io
import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import yaml
from PIL import Image
from xai_client.api.v1 import explain_pb2 as pb
from xai_client.overlay import BADGE_FAIL, BADGE_PASS
from xai_client.requests import build_request
from xai_client.results import explanation_from_proto

from xai_serve.errors import CheckpointError, InvalidArgumentError
from xai_serve.evaluation import credentials as cred
from xai_serve.evaluation.sanity_rule import SanityRule
from xai_serve.hashing import file_sha256
from xai_serve.serving.archive import ArchiveOptions, build_archive
from xai_serve.serving.handler import XaiHandler


def credentials_doc(weights: Path) -> dict:
    """A credentials document for ``weights``: gradient passed the sanity check, guided_backprop failed."""

    def record(spearman: float, morf: float) -> dict:
        return {
            "sanity": {"pass": SanityRule().passes(spearman), "spearman_abs": spearman},
            "faithfulness": {"kind": "pixel", "aopc_morf": morf, "aopc_lerf": 0.2, "abpc": 12.5},
        }

    return cred.build(
        methods={"gradient": record(0.18, 0.8), "guided_backprop": record(0.62, 0.7)},
        rule=SanityRule().describe(),
        config={"checkpoint_sha256": file_sha256(weights), "seed": 0, "samples": 8, "split": "val"},
        versions={},
    )


@pytest.fixture(scope="module")
def creds_file(ckpt_dir, tmp_path_factory) -> Path:
    return cred.write(
        tmp_path_factory.mktemp("creds") / "credentials.json", credentials_doc(ckpt_dir / "best.pt")
    )


@pytest.fixture(scope="module")
def archives(ckpt_dir, creds_file, tmp_path_factory, unpack) -> dict[str, Path]:
    store = tmp_path_factory.mktemp("store")
    out = {}
    for name, refuse in (("served", False), ("refusing", True)):
        mar = build_archive(
            ckpt_dir,
            name,
            store=store,
            options=ArchiveOptions(credentials=creds_file, refuse_failed_methods=refuse),
        )
        out[name] = unpack(mar, tmp_path_factory.mktemp(name))
    return out


def _handler(context_cls, model_dir: Path) -> XaiHandler:
    h = XaiHandler()
    h.initialize(context_cls.of_model_dir(model_dir))
    return h


def _explain(handler, context_cls, model_dir, png, methods, output="tensor") -> pb.ExplainResponse:
    ctx = context_cls.of_model_dir(model_dir)
    ctx.headers = [{}]
    req = build_request(png, methods=methods, output=output)
    (out,) = handler.handle([{"xai_request": req.SerializeToString()}], ctx)
    return pb.ExplainResponse.FromString(out)


def test_sha256_recorded_beside_the_weights(archives, creds_file):
    d = archives["served"]
    cfg = yaml.safe_load((d / "model-config.yaml").read_text())["xai"]
    assert cfg["credentials_sha256"] == hashlib.sha256(creds_file.read_bytes()).hexdigest()
    assert cfg["weights_sha256"] and cfg["refuse_failed_methods"] is False
    assert (d / "credentials.json").read_bytes() == creds_file.read_bytes()


def test_every_heatmap_carries_its_credential_and_describe_returns_them(
    archives, context_cls, digit_png, creds_file
):
    d = archives["served"]
    h = _handler(context_cls, d)
    resp = _explain(h, context_cls, d, digit_png, ["gradient", "guided_backprop", "deconvnet"])
    assert resp.status.code == pb.OK  # refusal is off by default: the failed method is served
    e = explanation_from_proto(resp)
    g, gb, dc = (e.heatmap(m).credential for m in ("gradient", "guided_backprop", "deconvnet"))
    assert g.certified and g.sanity_pass and g.sanity_spearman == pytest.approx(0.18)
    assert (g.aopc_morf, g.aopc_lerf, g.abpc) == pytest.approx((0.8, 0.2, 12.5))
    assert gb.certified and not gb.sanity_pass and gb.badge is False
    assert not dc.certified and dc.badge is None and dc.sanity_spearman is None  # not in the file
    ctx = context_cls.of_model_dir(d)
    ctx.headers = [{"describe": "True"}]
    (out,) = h.handle([{}], ctx)
    described = json.loads(out)["credentials"]
    assert described["methods"] == json.loads(creds_file.read_text())["methods"]
    assert described["summary"]["guided_backprop"]["sanity_pass"] is False


def test_overlay_png_shows_the_badge(archives, context_cls, digit_png):
    d = archives["served"]
    h = _handler(context_cls, d)
    resp = _explain(h, context_cls, d, digit_png, ["gradient", "guided_backprop", "deconvnet"], "png")
    pngs = {hm.method: np.asarray(Image.open(io.BytesIO(hm.png)).convert("RGB")) for hm in resp.heatmaps}
    size = pngs["gradient"].shape[1]
    side = max(5, size // 8)
    centre = (max(1, side // 8) + 1, size - side + 1)  # inside the badge, off its tick / cross

    def colour(img: np.ndarray) -> tuple[int, ...]:
        return tuple(int(v) for v in img[centre])

    assert colour(pngs["gradient"]) == BADGE_PASS
    assert colour(pngs["guided_backprop"]) == BADGE_FAIL
    assert colour(pngs["deconvnet"]) not in (BADGE_PASS, BADGE_FAIL)  # uncertified: no badge


def test_refusal_mode_names_the_failed_check_and_serves_passing_methods(archives, context_cls, digit_png):
    d = archives["refusing"]
    h = _handler(context_cls, d)
    bad = _explain(h, context_cls, d, digit_png, ["guided_backprop"])
    assert bad.status.code == pb.FAILED_PRECONDITION and bad.status.reason == "MethodRefusedError"
    assert "guided_backprop" in bad.status.message
    assert "sanity check 'cascading-randomisation-spearman-abs' failed" in bad.status.message
    assert not bad.heatmaps
    ok = _explain(h, context_cls, d, digit_png, ["gradient", "deconvnet"])  # passed / not certified
    assert ok.status.code == pb.OK and [x.method for x in ok.heatmaps] == ["gradient", "deconvnet"]
    # one refused request does not fail the others of its batch
    ctx = context_cls.of_model_dir(d)
    ctx.headers = [{}, {}]
    rows = [
        {"xai_request": build_request(digit_png, methods=m).SerializeToString()}
        for m in (["guided_backprop"], ["gradient"])
    ]
    r0, r1 = (pb.ExplainResponse.FromString(b) for b in h.handle(rows, ctx))
    assert r0.status.code == pb.FAILED_PRECONDITION and r1.status.code == pb.OK


@pytest.mark.parametrize("damage", ["tamper", "remove", "unrecord"])
def test_damaged_credentials_are_refused_at_load(archives, context_cls, tmp_path, damage):
    d = shutil.copytree(archives["served"], tmp_path / "m")
    if damage == "tamper":
        doc = json.loads((d / "credentials.json").read_text())
        doc["methods"]["guided_backprop"]["sanity"]["pass"] = True
        (d / "credentials.json").write_text(json.dumps(doc))
        match = "sha256 differs"
    elif damage == "remove":
        (d / "credentials.json").unlink()
        match = "has no credentials.json"
    else:
        cfg = yaml.safe_load((d / "model-config.yaml").read_text())
        del cfg["xai"]["credentials_sha256"]
        (d / "model-config.yaml").write_text(yaml.safe_dump(cfg))
        match = "records no credentials_sha256"
    with pytest.raises(CheckpointError, match=match):
        _handler(context_cls, d)


def test_archive_refuses_credentials_of_other_weights(ckpt_dir, tmp_path):
    other = tmp_path / "other.pt"
    other.write_bytes(b"not the archived weights")
    path = cred.write(tmp_path / "credentials.json", credentials_doc(other))
    with pytest.raises(CheckpointError, match="measured on other weights"):
        build_archive(ckpt_dir, "x", store=tmp_path / "store", options=ArchiveOptions(credentials=path))
    with pytest.raises(InvalidArgumentError, match="needs credentials"):
        build_archive(
            ckpt_dir, "x", store=tmp_path / "store", options=ArchiveOptions(refuse_failed_methods=True)
        )


def test_an_archive_without_credentials_serves_heatmaps_without_one(
    ckpt_dir, context_cls, digit_png, tmp_path, unpack
):
    mar = build_archive(ckpt_dir, "plain", store=tmp_path / "store")
    d = unpack(mar, tmp_path / "plain")
    assert "credentials_sha256" not in yaml.safe_load((d / "model-config.yaml").read_text())["xai"]
    h = _handler(context_cls, d)
    e = explanation_from_proto(_explain(h, context_cls, d, digit_png, ["gradient"]))
    assert e.heatmap("gradient").credential is None
    assert h.service.credentials.describe() is None


def test_client_command_overlays_carry_the_badge(archives, context_cls, digit_png, tmp_path):
    from xai_client.cli import write_explanation

    d = archives["served"]
    h = _handler(context_cls, d)
    e = explanation_from_proto(_explain(h, context_cls, d, digit_png, ["gradient", "guided_backprop"]))
    image = tmp_path / "digit.png"
    image.write_bytes(digit_png)
    write_explanation(image, e, tmp_path / "out")
    for method, colour in (("gradient", BADGE_PASS), ("guided_backprop", BADGE_FAIL)):
        img = np.asarray(Image.open(tmp_path / "out" / f"digit_{method}.png").convert("RGB"))
        side = max(5, img.shape[1] // 8)
        assert tuple(int(v) for v in img[max(1, side // 8) + 1, img.shape[1] - side + 1]) == colour
