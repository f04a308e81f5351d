"""Served decomposed-layer inference (Decomposing the Deep) against a real TorchServe:
``xai archive --decompose`` of the released ResNet-20 with the released k=5 index file; predictions and the
``decomposed`` explanation over gRPC and HTTP equal the in-process model and engine; the client gets the
filters as numpy."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from xai_serve.explain import explain_detailed
from xai_serve.models import ModelCard, canonicalise, create_model, load_state_dict_file
from xai_serve.serving.archive import ArchiveOptions

pytestmark = [pytest.mark.integration, pytest.mark.slow]

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"
WEIGHTS = FIXTURES / "resnet20-12fca82f.th"
INDICES = FIXTURES / "decomposing_the_deep" / "resnet20_cifar-10_indices.json"
MODEL = "resnet20_decomposed"


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory, request: pytest.FixtureRequest, private_server):
    root = tmp_path_factory.mktemp("decomposed")
    ckpt = root / "ckpt"
    ckpt.mkdir()
    torch.save(create_model("resnet20", weights=str(WEIGHTS)).state_dict(), ckpt / "best.pt")
    ModelCard(
        model="resnet20",
        model_kwargs={"num_classes": 10},
        dataset="cifar10",
        input_shape=[3, 32, 32],
        mean=[0.491, 0.482, 0.447],
        std=[0.247, 0.243, 0.261],
        labels=[f"class {i}" for i in range(10)],
    ).save(ckpt / "model.json")
    options = ArchiveOptions(batch_size=4, max_batch_delay_ms=50, decompose=INDICES)
    return private_server(request, root, [(ckpt, MODEL, options)])


@pytest.fixture(scope="module")
def reference() -> torch.nn.Module:
    sets = json.loads(INDICES.read_text())
    model = create_model(
        "decomposed",
        base="resnet20",
        base_kwargs={"num_classes": 10},
        indices=[sets[str(c)] for c in range(10)],
    )
    model.load_state_dict(load_state_dict_file(WEIGHTS))
    canonicalise(model)
    return model.eval()


@pytest.mark.parametrize("protocol", ["grpc", "http"])
def test_served_decomposed_equals_in_process(server, reference, protocol: str) -> None:
    x = np.random.default_rng(3).normal(size=(3, 32, 32)).astype(np.float32)
    with server.client(protocol) as c:
        e = c.explain(MODEL, x, ["decomposed"], target="predicted", normalized=True, top_k=10)
    with torch.no_grad():
        logits = reference(torch.from_numpy(x)[None])[0]
    assert e.prediction.index == int(logits.argmax())
    got = {s.index: s.logit for s in e.prediction.top}
    np.testing.assert_allclose([got[i] for i in range(10)], logits.numpy(), rtol=1e-5, atol=1e-5)
    # the served logits come from the decomposed layer, not the full one
    full = create_model("resnet20", weights=str(WEIGHTS)).eval()
    with torch.no_grad():
        assert not np.allclose(full(torch.from_numpy(x)[None])[0].numpy(), logits.numpy(), atol=1e-3)
    h = e.heatmap("decomposed")
    ref = explain_detailed(reference, torch.from_numpy(x)[None], {"decomposed": {}}, int(logits.argmax()))
    ev = ref["decomposed"].filters[0]
    assert h.filter_indices.tolist() == ev.filters.tolist() and len(h.filters) == 5
    np.testing.assert_allclose(h.filter_contributions, ev.contributions.numpy(), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(h.filter_maps, ev.maps.numpy(), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(h.values, ref["decomposed"].heatmap[0].numpy(), rtol=1e-5, atol=1e-6)
    assert h.filter_contributions.sum() + h.stats["bias"] + h.stats["others"] == pytest.approx(
        h.stats["logit"], abs=1e-4
    )
    assert h.stats["logit"] == pytest.approx(float(logits.max()), abs=1e-4)


def test_every_method_serves_on_the_decomposed_model(server) -> None:
    x = np.random.default_rng(4).normal(size=(3, 32, 32)).astype(np.float32)
    with server.client("grpc") as c:
        e = c.explain(
            MODEL, x, ["gradient", "gradcam", "lrp", "decomposed"], target=2, normalized=True, output="both"
        )
    for h in e.heatmaps:
        assert h.values is not None and np.isfinite(h.values).all() and h.png.startswith(b"\x89PNG")
