"""A worker imports only what it needs: in a fresh interpreter, importing the handler, loading a digits
SimpleNet archive and answering one batch (gradient + LRP) never imports torchvision (which imports
``torch._dynamo``: seconds of every worker's cold start) nor the offline-only libraries."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import zipfile
from pathlib import Path

from xai_serve.serving.archive import ArchiveOptions, build_archive

WORKER = r"""
import json, sys
from pathlib import Path

import numpy as np
import xai_serve.serving.handler as handler
from xai_client.api.v1 import explain_pb2 as pb
from xai_client.requests import build_request

model_dir = Path(sys.argv[1])


class Metrics:
    def get_metric(self, *args):
        return self

    def add_or_update(self, *args):
        pass


class Context:  # what XaiHandler uses of ts.context.Context
    model_name = "tiny"
    system_properties = {"model_dir": str(model_dir), "gpu_id": None, "batch_size": 4}
    manifest = json.loads((model_dir / "MAR-INF" / "MANIFEST.json").read_text())
    model_yaml_config = {}
    metrics = Metrics()

    def get_request_header(self, i, key):
        return None

    def get_all_request_header(self, i):
        return {}

    def set_response_content_type(self, i, value):
        pass

    def set_response_status(self, *args):
        pass


after_import = sorted(sys.modules)
h = handler.XaiHandler()
h.initialize(Context())
req = build_request(np.zeros((28, 28), "uint8"), methods=["gradient", "lrp"], target=3)
(out,) = h.handle([{"xai_request": req.SerializeToString()}], Context())
status = pb.ExplainResponse.FromString(out).status.code
print(json.dumps({"after_import": after_import, "after_batch": sorted(sys.modules), "ok": status == pb.OK}))
"""

HEAVY = ("torchvision", "torch._dynamo", "scipy", "sklearn", "matplotlib", "pandas", "captum", "zennit")


def test_digits_worker_never_imports_torchvision(ckpt_dir: Path, tmp_path: Path) -> None:
    mar = build_archive(ckpt_dir, "tiny", store=tmp_path / "store", options=ArchiveOptions())
    model_dir = tmp_path / "model_dir"
    with zipfile.ZipFile(mar) as z:
        z.extractall(model_dir)
    env = dict(os.environ, OMP_NUM_THREADS="1")
    proc = subprocess.run(
        [sys.executable, "-c", WORKER, str(model_dir)], capture_output=True, text=True, env=env, timeout=300
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    seen = json.loads(proc.stdout.strip().splitlines()[-1])
    assert seen["ok"]
    for stage in ("after_import", "after_batch"):
        loaded = sorted(m for m in HEAVY if m in seen[stage])
        assert loaded == [], f"{stage}: the worker imported {loaded}"


def test_registry_lists_torchvision_models_without_importing_torchvision() -> None:
    code = (
        "import sys, json; from xai_serve.models import list_models; "
        "print(json.dumps([list_models(), 'torchvision' in sys.modules]))"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    names, imported = json.loads(proc.stdout.strip().splitlines()[-1])
    assert {"resnet18", "resnet34", "resnet50", "resgptnet34", "mlp", "simplenet_310k"} <= set(names)
    assert imported is False
