"""The TorchServe handler on a real .mar built by the archive builder, with a context double
(no JVM): per-request parsing, encoding per transport, statuses, metrics, weight checks."""

from __future__ import annotations

import json
import zipfile
from pathlib import Path

import numpy as np
import pytest
import yaml
from xai_client.api.v1 import explain_pb2 as pb
from xai_client.requests import build_request
from xai_client.tensors import from_proto

from xai_serve.errors import CheckpointError
from xai_serve.serving.archive import HANDLER_SHIM, SHIM_TEXT, ArchiveOptions, build_archive
from xai_serve.serving.handler import XaiHandler


@pytest.fixture(scope="module")
def mar(ckpt_dir, tmp_path_factory) -> Path:
    store = tmp_path_factory.mktemp("store")
    return build_archive(
        ckpt_dir, "tiny", store=store, options=ArchiveOptions(batch_size=4, max_batch_delay_ms=50)
    )


@pytest.fixture(scope="module")
def unpacked(mar, tmp_path_factory, unpack) -> Path:
    return unpack(mar, tmp_path_factory.mktemp("model_dir"))


@pytest.fixture(scope="module")
def handler(unpacked, context_cls):
    h = XaiHandler()
    h.initialize(context_cls.of_model_dir(unpacked))
    return h


def test_archive_contents(mar, ckpt_dir):
    with zipfile.ZipFile(mar) as z:
        names = set(z.namelist())
        manifest = json.loads(z.read("MAR-INF/MANIFEST.json"))
        cfg = yaml.safe_load(z.read("model-config.yaml"))
        shim = z.read("xai_handler.py").decode()
    assert {"xai_handler.py", "weights.pt", "model.json", "index_to_name.json", "model-config.yaml"} <= names
    assert manifest["model"]["handler"] == "xai_handler.py"
    assert manifest["model"]["serializedFile"] == "weights.pt"
    import hashlib

    assert cfg["xai"]["weights_sha256"] == hashlib.sha256((ckpt_dir / "best.pt").read_bytes()).hexdigest()
    assert (cfg["batchSize"], cfg["maxBatchDelay"], cfg["minWorkers"], cfg["maxWorkers"]) == (4, 50, 1, 1)
    assert cfg["responseTimeout"] == 120
    assert shim == HANDLER_SHIM.read_text()


def test_shim_defines_exactly_one_class():
    assert HANDLER_SHIM.read_text() == SHIM_TEXT  # the fallback copy stays in sync
    ns: dict = {"__name__": "xai_handler"}
    exec(compile(SHIM_TEXT, "xai_handler.py", "exec"), ns)
    own = [v for v in ns.values() if isinstance(v, type) and v.__module__ == "xai_handler"]
    assert len(own) == 1 and issubclass(own[0], XaiHandler)


def test_grpc_and_http_requests_in_one_batch(handler, unpacked, context_cls, digit_png):
    ctx = context_cls.of_model_dir(unpacked)
    good = build_request(digit_png, methods=["gradient"], target=3)
    rows = [
        {"xai_request": good.SerializeToString()},
        {"xai_request": b"\x0a\xff\xff garbage"},
        {"body": good.SerializeToString()},
        {"body": digit_png, "method": b"gradient", "target": b"12"},
        {"body": digit_png},
        {"body": digit_png},
    ]
    ctx.headers = [
        {"explain": {"content-type": ""}},
        {},
        {"Content-Type": "application/x-protobuf", "Accept": "application/x-protobuf", "explain": "True"},
        {"Content-Type": "image/png", "explain": "True"},
        {"Content-Type": "image/png", "explain": "False"},
        {"Content-Type": "image/png", "Accept": "image/png", "explain": "True"},
    ]
    out = handler.handle(rows, ctx)
    assert len(out) == len(rows)
    r0 = pb.ExplainResponse.FromString(out[0])
    assert r0.status.code == pb.OK and r0.heatmaps[0].target == 3
    r1 = pb.ExplainResponse.FromString(out[1])
    assert r1.status.code == pb.INVALID_ARGUMENT and "malformed" in r1.status.message
    r2 = pb.ExplainResponse.FromString(out[2])
    np.testing.assert_allclose(
        from_proto(r2.heatmaps[0].values), from_proto(r0.heatmaps[0].values), rtol=0, atol=1e-6
    )
    j3 = json.loads(out[3])
    assert j3["status"]["code"] == "INVALID_ARGUMENT" and "out of range" in j3["status"]["message"]
    j4 = json.loads(out[4])  # /predictions: prediction only
    assert j4["status"]["code"] == "OK" and "heatmaps" not in j4 and len(j4["prediction"]["top"]) == 5
    assert out[5].startswith(b"\x89PNG")  # /explanations with Accept: image/png -> the overlay
    # gRPC answers always travel as 200 with the status inside; HTTP errors get 4xx
    assert ctx.statuses == {3: (400, "Bad Request")}
    assert ctx.content_types[0] == ctx.content_types[1] == "application/x-protobuf"
    assert ctx.content_types[3] == "application/json" and ctx.content_types[5] == "image/png"
    names = {(name, dims) for name, _v, dims in ctx.metrics.log}
    assert ("xai_explanations_total", ("tiny", "gradient", "ok")) in names
    assert ("xai_batch_size", ("tiny",)) in names


def test_json_heatmap_is_base64_float32_with_shape(handler, unpacked, context_cls, digit_png):
    import base64

    ctx = context_cls.of_model_dir(unpacked)
    req = build_request(digit_png, methods=["gradient"], target=1)
    from google.protobuf import json_format

    ctx.headers = [{"Content-Type": "application/json", "explain": "True"}]
    (out,) = handler.handle([{"body": json_format.MessageToDict(req)}], ctx)
    h = json.loads(out)["heatmaps"][0]
    values = np.frombuffer(base64.b64decode(h["values"]["data"]), dtype="<f4").reshape(h["values"]["shape"])
    assert values.shape == (1, 28, 28) and h["values"]["dtype"] == "DTYPE_FLOAT32"
    ctx.headers = [{"Content-Type": "application/x-protobuf", "Accept": "application/x-protobuf"}]
    (pbout,) = handler.handle([{"body": req.SerializeToString()}], ctx)
    np.testing.assert_allclose(
        values, from_proto(pb.ExplainResponse.FromString(pbout).heatmaps[0].values), rtol=0, atol=1e-6
    )


def test_handler_never_raises(handler, unpacked, context_cls):
    ctx = context_cls.of_model_dir(unpacked)
    ctx.headers = [{}, {}]
    out = handler.handle([{"xai_request": 12345}, {"unexpected": object()}], ctx)
    codes = [
        pb.ExplainResponse.FromString(o).status.code
        if isinstance(o, bytes) and not o.startswith(b"{")
        else json.loads(o)["status"]["code"]
        for o in out
    ]
    assert len(out) == 2 and all(c in (pb.INVALID_ARGUMENT, "INVALID_ARGUMENT") for c in codes)


def test_describe(handler, unpacked, context_cls):
    ctx = context_cls.of_model_dir(unpacked)
    ctx.headers = [{"describe": "True"}]
    (out,) = handler.handle([{}], ctx)
    d = json.loads(out)
    assert d["card"]["model"] == "simplenet_310k" and "gradient" in d["methods"]
    # full parameter specs from the registry, and the archive's cost limits
    from xai_serve.explain import list_methods

    assert set(d["methods"]) == set(list_methods())
    comp = d["methods"]["lrp"]["params"]["composite"]
    assert comp["type"] == "str" and comp["default"] == "auto" and comp["doc"] and comp["choices"]
    assert d["methods"]["class_image"]["iterations"] == "iterations"
    assert d["limits"]["max_rows"] >= 1 and d["limits"]["lrp_cache_entries"] >= 1


def test_tampered_weights_are_refused(unpacked, context_cls, tmp_path):
    import shutil

    d = tmp_path / "m"
    shutil.copytree(unpacked, d)
    with (d / "weights.pt").open("ab") as f:
        f.write(b"\0")
    with pytest.raises(CheckpointError, match="sha256"):
        XaiHandler().initialize(context_cls.of_model_dir(d))
