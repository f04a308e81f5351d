"""A user's model file (``xai import --model-file``) travels in the archive: packed beside the card, the
worker (the real handler with a context double) imports it from the model directory, a changed copy is
refused by its sha256, and ``--onnx`` exports the same model."""

from __future__ import annotations

import zipfile
from pathlib import Path

import numpy as np
import onnxruntime as ort
import pytest
import torch
from xai_client.api.v1 import explain_pb2 as pb
from xai_client.requests import build_request

from xai_serve.errors import ModelFileError
from xai_serve.models import load_checkpoint
from xai_serve.serving.archive import ONNX_NAME, ArchiveOptions, build_archive
from xai_serve.serving.handler import XaiHandler
from xai_serve.training.importer import ImportSpec, import_weights

MODEL_FILE = """
import torch
from torch import nn


class Small(nn.Module):
    def __init__(self, classes: int = 3) -> None:
        super().__init__()
        self.conv = nn.Conv2d(1, 4, 3, padding=1)
        self.relu = nn.ReLU(inplace=True)
        self.head = nn.Linear(4, classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.relu(self.conv(x)).mean(dim=(2, 3)))
"""


@pytest.fixture(scope="module")
def imported(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("user")
    (root / "small_net.py").write_text(MODEL_FILE)
    namespace: dict = {}
    exec(compile(MODEL_FILE, "small_net.py", "exec"), namespace)
    torch.manual_seed(0)
    torch.save(namespace["Small"](classes=3).state_dict(), root / "w.pt")
    spec = ImportSpec(
        root / "w.pt",
        root / "ckpt",
        model_file=root / "small_net.py",
        model_class="Small",
        kwargs={"classes": 3},
        input_size=(1, 28, 28),
        normalize="0.5/0.5",
    )
    return import_weights(spec).out


def test_the_model_file_is_packed_and_served_from_the_archive(
    imported, tmp_path, unpack, context_cls, digit_png
):
    mar = build_archive(imported, "small", store=tmp_path / "store", options=ArchiveOptions(onnx=True))
    with zipfile.ZipFile(mar) as z:
        assert "small_net.py" in z.namelist() and ONNX_NAME in z.namelist()
    model_dir = unpack(mar, tmp_path / "model_dir")
    handler = XaiHandler()
    handler.initialize(context_cls.of_model_dir(model_dir, "small"))
    ctx = context_cls.of_model_dir(model_dir, "small")
    ctx.headers = [{}]
    request = build_request(digit_png, methods=["gradient"], target=1)
    [answer] = handler.handle([{"xai_request": request.SerializeToString()}], ctx)
    response = pb.ExplainResponse.FromString(answer)
    model, card = load_checkpoint(imported)
    from io import BytesIO

    from PIL import Image

    pixels = torch.from_numpy(np.asarray(Image.open(BytesIO(digit_png)), dtype=np.float32) / 255.0)
    with torch.no_grad():
        logits = model(((pixels - card.mean[0]) / card.std[0])[None, None])[0]
    assert response.prediction.top[0].index == int(logits.argmax())
    got = {s.index: s.logit for s in response.prediction.top}
    np.testing.assert_allclose([got[i] for i in range(3)], logits.numpy(), atol=1e-5)
    # the ONNX export is the same model
    x = np.random.default_rng(0).normal(size=(2, 1, 28, 28)).astype(np.float32)
    session = ort.InferenceSession(str(model_dir / ONNX_NAME))
    (onnx_out,) = session.run(None, {session.get_inputs()[0].name: x})
    with torch.no_grad():
        np.testing.assert_allclose(onnx_out, model(torch.from_numpy(x)).numpy(), atol=1e-4)
    # a model file changed after the import is refused by the worker
    (model_dir / "small_net.py").write_text(MODEL_FILE + "\n# changed\n")
    with pytest.raises(ModelFileError, match="sha256 differs"):
        XaiHandler().initialize(context_cls.of_model_dir(model_dir, "small"))
