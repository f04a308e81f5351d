"""A vision transformer served by ``xai archive`` + ``xai serve`` (real TorchServe): the zoo's digits ViT
(``vit``: torchvision's layout, patch 7, 4 blocks, dim 64) answers every method that applies to it over
gRPC and HTTP exactly as the in-process engine does (LRP with ``attnlrp`` by default and ``cp_lrp``,
Grad-CAM on the last block's input normalisation), and refuses the ReLU-only methods with a typed error
naming the GELU."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from xai_client.errors import XaiClientError

from xai_serve.explain import ModelContext, explain_detailed
from xai_serve.models import load_checkpoint
from xai_serve.serving.archive import ArchiveOptions
from xai_serve.testing import write_checkpoint

pytestmark = [pytest.mark.integration, pytest.mark.slow]

MODEL = "digits_vit"
METHODS: dict[str, dict[str, str]] = {
    "gradient": {},
    "input_x_gradient": {},
    "gradcam": {},
    "lrp": {},
}


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory, request: pytest.FixtureRequest, private_server):
    root = tmp_path_factory.mktemp("vit")
    ckpt = write_checkpoint(
        root / "ckpt", model="vit", model_kwargs={"num_classes": 10, "input_shape": [1, 28, 28]}
    )
    options = ArchiveOptions(batch_size=2, max_batch_delay_ms=50)
    return private_server(request, root, [(ckpt, MODEL, options)])


@pytest.mark.parametrize("protocol", ["grpc", "http"])
@pytest.mark.parametrize(
    ("method", "params"), [*METHODS.items(), ("lrp", {"composite": "cp_lrp"})], ids=lambda v: str(v)
)
def test_served_vit_equals_in_process(server, protocol: str, method: str, params: dict[str, str]) -> None:
    model, card = load_checkpoint(server.checkpoint, "best")
    x = np.random.default_rng(5).normal(size=(1, 28, 28)).astype(np.float32)
    with server.client(protocol) as c:
        e = c.explain(MODEL, x, {method: params}, target=3, normalized=True)
    h = e.heatmap(method)
    context = ModelContext.of(card.mean, card.std)
    ref = explain_detailed(model, torch.from_numpy(x)[None], {method: params}, [3], context)[method]
    assert h.values is not None
    np.testing.assert_allclose(h.values, ref.heatmap[0].detach().numpy(), rtol=0, atol=1e-6)
    if method == "gradcam":
        assert h.layer == "encoder.layers.encoder_layer_3.ln_1 (tokens: 1 dropped, 4x4 grid)"


@pytest.mark.parametrize("protocol", ["grpc", "http"])
def test_served_vit_refuses_guided_backprop_naming_the_gelu(server, protocol: str) -> None:
    x = np.zeros((1, 28, 28), dtype=np.float32)
    with server.client(protocol) as c, pytest.raises(XaiClientError, match="GELU"):
        c.explain(MODEL, x, {"guided_backprop": {}}, target=3, normalized=True)
