"""The ``decomposed`` explanation method, its wire encoding (Heatmap.filters, stats) in the in-process
service, and the client's numpy view."""

from __future__ import annotations

import copy

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn
from xai_client.api.v1 import explain_pb2 as pb
from xai_client.requests import build_request
from xai_client.results import explanation_from_proto

from xai_serve.decomposition.features import capture
from xai_serve.explain import create_explainer, explain_detailed, list_methods
from xai_serve.models import ModelCard
from xai_serve.models.decomposed import decompose
from xai_serve.serving.service import ExplainService


@pytest.fixture(scope="module")
def decomposed(resnet20: nn.Module, released) -> nn.Module:
    return decompose(copy.deepcopy(resnet20), released.released_indices(5)).eval()


def test_registered() -> None:
    spec = list_methods()["decomposed"]
    assert spec.signed and "top" in spec.params


def test_contributions_sum_to_logit_and_maps(decomposed: nn.Module, released) -> None:
    x = torch.randn(3, 3, 32, 32, generator=torch.Generator().manual_seed(1))
    a = create_explainer("decomposed", decomposed).attribute(x, [0, 4, 9])
    sets = released.released_indices(5)
    c = capture(decomposed, x)
    w, b = decomposed.linear.weight.detach(), decomposed.linear.bias.detach()
    for i, cls in enumerate([0, 4, 9]):
        ev = a.filters[i]
        assert sorted(ev.filters.tolist()) == sorted(sets[cls])  # exactly S_c
        assert ev.contributions.tolist() == sorted(ev.contributions.tolist(), reverse=True)
        expected = w[cls, ev.filters] * c.pooled[i, ev.filters]
        torch.testing.assert_close(ev.contributions, expected)
        total = float(ev.contributions.sum()) + a.stats["bias"][i] + a.stats["others"][i]
        assert total == pytest.approx(float(c.logits[i, cls]), abs=1e-4)
        assert a.stats["logit"][i] == pytest.approx(float(c.logits[i, cls]))
        assert a.stats["others"][i] == 0.0 and a.stats["bias"][i] == pytest.approx(float(b[cls]))
        up = F.interpolate(c.maps[i : i + 1], size=(32, 32), mode="bilinear", align_corners=False)[0]
        torch.testing.assert_close(ev.maps, up[ev.filters])
    # average-pooled head: the class map's spatial mean (before upsampling) is logit - bias
    cam = sum(w[0, f] * c.maps[0, f] for f in sets[0])
    assert float(cam.mean()) == pytest.approx(a.stats["logit"][0] - a.stats["bias"][0], abs=1e-4)
    assert a.heatmap.shape == x.shape and a.layer == "layer3"


def test_full_layer_lists_top_contributors(resnet20: nn.Module) -> None:
    x = torch.randn(2, 3, 32, 32, generator=torch.Generator().manual_seed(2))
    a = create_explainer("decomposed", resnet20, top=6).attribute(x, "predicted")
    c = capture(resnet20, x)
    w = resnet20.linear.weight.detach()
    for i in range(2):
        cls = int(c.logits[i].argmax())
        contrib = w[cls] * c.pooled[i]
        assert a.filters[i].filters.tolist() == contrib.argsort(descending=True)[:6].tolist()
        assert a.stats["others"][i] == pytest.approx(
            float(contrib.sort(descending=True).values[6:].sum()), abs=1e-4
        )


def test_service_encodes_filters_and_client_reads_numpy(decomposed: nn.Module) -> None:
    card = ModelCard(
        model="resnet20",
        model_kwargs={},
        dataset="cifar10",
        input_shape=[3, 32, 32],
        mean=[0.5, 0.5, 0.5],
        std=[0.25, 0.25, 0.25],
        labels=[str(i) for i in range(10)],
    )
    svc = ExplainService("dec", decomposed, card)
    x = np.random.default_rng(0).normal(size=(3, 32, 32)).astype(np.float32)
    req = build_request(x, methods=["decomposed"], normalized=True, target=3, output="both")
    (resp,) = svc.handle([req])
    assert resp.status.code == pb.OK, resp.status.message
    h = resp.heatmaps[0]
    assert len(h.filters) == 5 and {"logit", "bias", "others"} <= set(h.stats)
    exp = explanation_from_proto(resp).heatmap("decomposed")
    ref = explain_detailed(decomposed, torch.from_numpy(x)[None], {"decomposed": {}}, 3)["decomposed"]
    assert exp.filter_indices.tolist() == ref.filters[0].filters.tolist()
    np.testing.assert_allclose(exp.filter_contributions, ref.filters[0].contributions.numpy(), rtol=1e-6)
    assert exp.filter_maps.shape == (5, 32, 32) and exp.filter_maps.dtype == np.float32
    np.testing.assert_allclose(exp.filter_maps, ref.filters[0].maps.numpy(), rtol=1e-6)
    assert exp.filter_contributions.sum() + exp.stats["bias"] + exp.stats["others"] == pytest.approx(
        exp.stats["logit"], abs=1e-4
    )
    # the PNG shows the class map and the top 4 filter maps side by side
    from io import BytesIO

    from PIL import Image

    png = Image.open(BytesIO(h.png))
    assert png.size[0] > 4 * png.size[1]


def test_first_order_terms_on_a_model_without_pooled_head() -> None:
    torch.manual_seed(0)
    model = (
        nn.Sequential(
            nn.Conv2d(1, 4, 3, padding=1),
            nn.ReLU(),
            nn.MaxPool2d(2),
            nn.Conv2d(4, 6, 3, padding=1),
            nn.ReLU(),
            nn.Flatten(),
            nn.Linear(6 * 4 * 4, 8),
            nn.ReLU(),
            nn.Linear(8, 3),
        )
        .double()
        .eval()
    )
    x = torch.randn(2, 1, 8, 8, dtype=torch.float64)
    a = create_explainer("decomposed", model, layer="4", top=6).attribute(x, [0, 2])
    # reference: gradient x activation of the layer-4 output, by autograd
    acts = model[:5](x).detach().requires_grad_(True)
    out = model[5:](acts)
    for i, c in enumerate([0, 2]):
        (g,) = torch.autograd.grad(out[i, c], acts, retain_graph=True)
        terms = (acts[i] * g[i]).sum(dim=(1, 2)).detach()
        assert a.filters[i].filters.tolist() == terms.argsort(descending=True).tolist()
        torch.testing.assert_close(a.filters[i].contributions, terms.sort(descending=True).values)
        assert a.stats["exact"][i] == 0.0
        total = float(a.filters[i].contributions.sum()) + a.stats["bias"][i] + a.stats["others"][i]
        assert total == pytest.approx(float(out[i, c].detach()), abs=1e-9)
