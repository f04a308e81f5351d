"""ONNX export of every registered model: the onnx checker passes and onnxruntime agrees with torch.

Max |onnxruntime - torch| per model is printed (run with -s) and bounded by TOL. onnxruntime is a
test-only dependency; a missing one FAILS these tests."""

from __future__ import annotations

import json

import numpy as np
import onnx
import onnxruntime as ort
import pytest
import torch
from typer.testing import CliRunner

from xai_serve.cli import app
from xai_serve.export.onnx_export import METADATA_KEY, export_model
from xai_serve.models import create_model, list_models

TOL = 1e-4  # float32, relative to max(1, |torch output|)

# name -> (factory kwargs, input shape); small inputs keep the export quick on 2 cores
MODELS: dict[str, tuple[dict, list[int]]] = {
    "mlp": ({"input_shape": [1, 28, 28], "hidden": [64, 32]}, [1, 28, 28]),
    "simplenet_310k": ({}, [1, 28, 28]),
    "simplenet_5m": ({}, [3, 32, 32]),
    "resnet20": ({}, [3, 32, 32]),
    "resnet18": ({}, [3, 64, 64]),
    "resnet34": ({}, [3, 64, 64]),
    "resnet50": ({}, [3, 64, 64]),
    "resgptnet_small": ({}, [1, 28, 28]),
    "resgptnet34": ({}, [1, 28, 28]),
    "vit": ({}, [1, 28, 28]),
    "decomposed": ({"base": "resnet20", "indices": [[i, i + 10, i + 20] for i in range(10)]}, [3, 32, 32]),
}


def test_every_registered_model_has_a_parity_case():
    assert set(list_models()) <= set(MODELS), set(list_models()) - set(MODELS)


@pytest.mark.parametrize("name", sorted(MODELS))
def test_onnxruntime_matches_torch(name, tmp_path):
    if name not in list_models():
        pytest.fail(f"{name} is in the parity table but not registered")
    kwargs, shape = MODELS[name]
    torch.manual_seed(0)
    model = create_model(name, **kwargs).eval()
    with torch.no_grad():
        x = torch.randn(3, *shape)
        ref = model(x)
    refs = list(ref) if isinstance(ref, tuple | list) else [ref]
    outputs = ["logits"] if len(refs) == 1 else [f"out{i}" for i in range(len(refs))]
    path = export_model(
        model, shape, tmp_path / f"{name}.onnx", outputs=outputs, dynamic_batch=True, metadata={"k": "v"}
    )
    proto = onnx.load(str(path))
    onnx.checker.check_model(proto, full_check=True)
    assert {p.key: p.value for p in proto.metadata_props} == {"k": "v"}
    sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    got = sess.run(None, {"input": x.numpy()})  # batch 3 through a graph traced at batch 1
    assert len(got) == len(refs)
    diffs, absolute = [], []
    for g, r in zip(got, refs, strict=True):
        r = r.numpy()
        assert g.shape == r.shape
        absolute.append(float(np.max(np.abs(g - r))))
        diffs.append(absolute[-1] / max(1.0, float(np.max(np.abs(r)))))
    print(f"onnx parity {name}: max abs diff {max(absolute):.2e} (relative to max(1,|y|): {max(diffs):.2e})")
    assert max(diffs) < TOL


def test_export_onnx_command_writes_checked_model_with_card(digits_ckpt, tmp_path):
    out = tmp_path / "m.onnx"
    res = CliRunner().invoke(app, ["export-onnx", str(digits_ckpt), "--out", str(out), "--opset", "17"])
    assert res.exit_code == 0, res.output
    proto = onnx.load(str(out))
    onnx.checker.check_model(proto)
    assert proto.opset_import[0].version == 17
    card = json.loads({p.key: p.value for p in proto.metadata_props}[METADATA_KEY])
    assert card["model"] == "mlp" and len(card["labels"]) == 10
    assert proto.graph.input[0].type.tensor_type.shape.dim[0].dim_value == 1  # fixed batch by default


def test_export_onnx_of_a_missing_checkpoint_is_a_clear_error(tmp_path):
    res = CliRunner().invoke(app, ["export-onnx", str(tmp_path / "nope")])
    assert res.exit_code == 2 and "not found" in res.output


def test_archive_onnx_packs_a_checked_model_next_to_the_state_dict(digits_ckpt, tmp_path):
    import zipfile

    res = CliRunner().invoke(
        app, ["archive", str(digits_ckpt), "--name", "digits", "--store", str(tmp_path), "--onnx"]
    )
    assert res.exit_code == 0, res.output
    with zipfile.ZipFile(tmp_path / "digits.mar") as z:
        names = z.namelist()
        assert "model.onnx" in names and any(n.endswith(".pt") for n in names)
        (tmp_path / "model.onnx").write_bytes(z.read("model.onnx"))
    sess = ort.InferenceSession(str(tmp_path / "model.onnx"), providers=["CPUExecutionProvider"])
    x = torch.randn(2, 1, 28, 28)
    from xai_serve.models import load_checkpoint

    model, _ = load_checkpoint(digits_ckpt)
    with torch.no_grad():
        ref = model(x).numpy()
    (got,) = sess.run(None, {"input": x.numpy()})
    assert np.max(np.abs(got - ref)) < 1e-5
