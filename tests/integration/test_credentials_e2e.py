"""Credentials over a real TorchServe: ``xai certify`` measures a checkpoint, ``xai archive``'s
builder packs credentials.json, the worker checks it on load, and the client sees it (describe + a
typed credential on every heatmap, over gRPC and HTTP); an archive in refusal mode answers a failed
method with the typed FailedPrecondition naming the check and serves the passing one.

The session server cannot take new models (its model API is off by design), so this module starts
one TorchServe of its own with the two archives (the `private_server` fixture), stopped by PID at the end.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
from xai_client import FailedPrecondition

from xai_serve.evaluation import credentials as cred
from xai_serve.evaluation.certify import CertifyOptions, certify
from xai_serve.serving.archive import ArchiveOptions

pytestmark = pytest.mark.integration

METHODS = ["gradient", "guided_backprop"]


@pytest.fixture(scope="module")
def certified(checkpoint_factory, private_server, tmp_path_factory, request):
    """(served, credentials doc, refusal-mode doc): the doc measured on a checkpoint, packed
    as ``tiny_cred``; ``tiny_refuse`` refuses failed methods."""
    root = tmp_path_factory.mktemp("certify")
    ckpt = checkpoint_factory(root / "ckpt")
    path = certify(ckpt, root / "run", CertifyOptions(methods=METHODS, samples=4, batch_size=4, split="val"))
    doc = cred.load(path)
    # the refusal archive: the same measurement with guided_backprop's verdict set to failed
    refuse_doc = json.loads(json.dumps(doc))
    refuse_doc["methods"]["guided_backprop"]["sanity"]["pass"] = False
    refuse_doc["methods"]["gradient"]["sanity"]["pass"] = True
    refuse_path = cred.write(root / "refuse" / "credentials.json", refuse_doc)
    archives = [
        (ckpt, name, ArchiveOptions(batch_size=1, credentials=creds, refuse_failed_methods=refuse))
        for name, creds, refuse in (("tiny_cred", path, False), ("tiny_refuse", refuse_path, True))
    ]
    return private_server(request, root, archives, timeout=300), doc, refuse_doc


def _image() -> np.ndarray:
    return (np.random.default_rng(3).random((28, 28)) * 255).astype(np.uint8)


@pytest.mark.parametrize("protocol", ["grpc", "http"])
def test_credentials_round_trip(certified, protocol):
    server, doc, _ = certified
    with server.client(protocol, timeout=120) as c:
        e = c.explain("tiny_cred", _image(), [*METHODS, "deconvnet"], output="both")
        for m in METHODS:
            want = cred.summary(doc, m)
            got = e.heatmap(m).credential
            assert got is not None and got.certified and got.sanity_pass == want["sanity_pass"]
            for key in ("sanity_spearman", "aopc_morf", "aopc_lerf", "abpc"):
                assert getattr(got, key) == pytest.approx(want.get(key, 0.0), abs=1e-12)
            assert e.heatmap(m).png.startswith(b"\x89PNG")
        assert not e.heatmap("deconvnet").credential.certified  # not certified: said so
        served_creds = c.credentials("tiny_cred")
        assert set(served_creds) == set(METHODS)
        assert served_creds["gradient"] == e.heatmap("gradient").credential
        described = c.describe("tiny_cred")["credentials"]
        assert described["checkpoint_sha256"] == doc["checkpoint_sha256"]
        assert described["samples"] == 4 and described["split"] == "val" and described["seed"] == 0


@pytest.mark.parametrize("protocol", ["grpc", "http"])
def test_refusal_mode(certified, protocol):
    server, _, _ = certified
    with server.client(protocol, timeout=120) as c:
        with pytest.raises(FailedPrecondition, match=r"guided_backprop.*sanity check"):
            c.explain("tiny_refuse", _image(), "guided_backprop")
        e = c.explain("tiny_refuse", _image(), "gradient")
        assert e.heatmap("gradient").credential.sanity_pass and e.heatmap("gradient").values is not None
