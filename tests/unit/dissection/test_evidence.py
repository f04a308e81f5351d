"""Concept-labelled unit evidence (Heatmap.units) from the in-process service: Grad-CAM contributions
vs Captum's LayerGradCam (closed form: they sum to the spatial mean of the un-ReLU'd CAM), decomposed
filter contributions, layer guided backprop's filter, archive validation."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from xai_client.api.v1 import explain_pb2 as pb
from xai_client.requests import build_request
from xai_client.results import explanation_from_proto

from xai_serve.dissection.evidence import Dissection, attach
from xai_serve.errors import InvalidArgumentError
from xai_serve.explain import UnitContributions, create_explainer
from xai_serve.models import canonicalise, create_model
from xai_serve.serving.service import ExplainService

LAYER = "features.36"


def _csv(path: Path, layer: str = LAYER, units: int = 64) -> Path:
    lines = ["layer,unit,formula,iou,single,single_iou,length,primitives,mask_pixels,category"]
    for u in range(units):
        formula = "NONE" if u % 7 == 0 else f"(c{u} OR d{u}) AND NOT e{u}"
        lines.append(f"{layer},{u},{formula},{0.0 if u % 7 == 0 else u / 100},c{u},0.01,4,3,10,object")
    path.write_text("\n".join(lines) + "\n")
    return path


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    from xai_serve.models import ModelCard

    torch.manual_seed(0)
    model = canonicalise(create_model("simplenet_310k", num_classes=10)).eval()
    card = ModelCard(
        "simplenet_310k",
        {"num_classes": 10},
        "digits",
        [1, 28, 28],
        [0.25],
        [0.5],
        [f"digit {i}" for i in range(10)],
    )
    csv = _csv(tmp_path_factory.mktemp("diss") / "results.csv")
    dissection = Dissection.load(csv, top=5)
    return ExplainService("tiny", model, card, dissection=dissection), model, dissection


def _x(seed: int) -> np.ndarray:
    return np.random.default_rng(seed).normal(size=(1, 28, 28)).astype(np.float32)


def test_gradcam_units_match_captum(setup) -> None:
    from captum.attr import LayerGradCam

    service, model, dissection = setup
    x = _x(0)
    (resp,) = service.handle([build_request(x, methods={"gradcam": {}}, target=3, normalized=True)])
    assert resp.status.code == pb.OK, resp.status.message
    h = explanation_from_proto(resp).heatmap("gradcam")
    assert 1 <= len(h.units) <= 5
    # closed form: contribution_k = mean(grad_k) * mean(A_k); sum_k = mean_hw(sum_k alpha_k A_k)
    module = dict(model.named_modules())[LAYER]
    xt = torch.from_numpy(x)[None]
    cam = LayerGradCam(model, module).attribute(xt, target=3, relu_attributions=False)
    gradcam = create_explainer("gradcam", model)
    assert isinstance(gradcam, UnitContributions)
    xs = torch.from_numpy(x)
    rows = gradcam.unit_contributions(xs, 3, LAYER, gradcam.attribute(xs[None], 3), 0)
    assert rows is not None
    np.testing.assert_allclose(rows[:, 1].sum(), float(cam.detach().mean()), rtol=1e-4, atol=1e-6)
    top = sorted(range(rows.shape[0]), key=lambda k: (-rows[k, 1], k))[: len(h.units)]
    assert [u.unit for u in h.units] == top
    for u in h.units:
        assert u.layer == LAYER and u.contribution == pytest.approx(rows[u.unit, 1]) and u.contribution > 0
        label = dissection.labels[u.unit]
        assert (u.formula, u.iou) == (label.formula, pytest.approx(label.iou))
    assert h.concepts.startswith("class 3 because of unit ")


def test_layer_guided_backprop_lists_its_filter(setup) -> None:
    service, _, _ = setup
    req = build_request(
        _x(1), methods={"layer_guided_backprop": {"layer": LAYER, "filter": "12"}}, normalized=True
    )
    (resp,) = service.handle([req])
    assert resp.status.code == pb.OK, resp.status.message
    h = explanation_from_proto(resp).heatmaps[0]
    (u,) = h.units
    assert (u.unit, u.formula) == (12, "(c12 OR d12) AND NOT e12")
    assert u.contribution == pytest.approx(h.stats["objective"]) and u.contribution > 0


def test_decomposed_filters_get_formulas(setup, tmp_path) -> None:
    _, model, _ = setup
    card = setup[0].card
    dissection = Dissection.load(_csv(tmp_path / "features.csv", layer="features"), top=3)
    service = ExplainService("tiny", model, card, dissection=dissection)
    (resp,) = service.handle([build_request(_x(3), methods={"decomposed": {}}, target=4, normalized=True)])
    assert resp.status.code == pb.OK, resp.status.message
    h = explanation_from_proto(resp).heatmaps[0]
    positive = [f for f in h.filters if f.contribution > 0][:3]
    assert [u.unit for u in h.units] == [f.filter for f in positive]
    assert [u.contribution for u in h.units] == pytest.approx([f.contribution for f in positive])
    assert all(u.formula == dissection.labels[u.unit].formula for u in h.units)


def test_other_methods_and_other_layers_have_no_units(setup, tmp_path) -> None:
    service, _, _ = setup
    (resp,) = service.handle([build_request(_x(2), methods={"gradient": {}}, normalized=True)])
    assert not resp.heatmaps[0].units
    req = build_request(_x(2), methods={"layer_guided_backprop": {"layer": "features.27"}}, normalized=True)
    (resp,) = service.handle([req])
    assert resp.status.code == pb.OK and not resp.heatmaps[0].units


def test_attach_validates(tmp_path) -> None:
    model = create_model("simplenet_310k", num_classes=10)
    work = tmp_path / "work"
    work.mkdir()
    assert attach(_csv(tmp_path / "ok.csv"), work, model).name == "dissection.csv"
    with pytest.raises(InvalidArgumentError, match="does not have"):
        attach(_csv(tmp_path / "bad.csv", layer="layer4"), work, model)
    (tmp_path / "junk.csv").write_text("a,b\n1,2\n")
    with pytest.raises(InvalidArgumentError, match="not a dissection results CSV"):
        attach(tmp_path / "junk.csv", work, model)
    with pytest.raises(InvalidArgumentError, match="do not exist"):
        Dissection.load(tmp_path / "missing.csv")
