"""Concept-labelled evidence against a real TorchServe: a random digits SimpleNet dissected on a small
synthetic Broden-format set (`xai dissect` pipeline), archived with ``--dissection``; Grad-CAM answers
over gRPC and HTTP carry ``Heatmap.units`` equal to the in-process computation, with the formulas and
IoUs of the results CSV."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from xai_serve.data.synthetic_broden import write_synthetic_broden
from xai_serve.dissection.evidence import Dissection
from xai_serve.dissection.runner import DissectConfig, dissect
from xai_serve.explain import UnitContributions, create_explainer
from xai_serve.models import load_checkpoint
from xai_serve.serving.archive import ArchiveOptions

pytestmark = [pytest.mark.integration, pytest.mark.slow]

MODEL = "tiny_dissected"
LAYER = "features.36"


@pytest.fixture(scope="module")
def served(
    tmp_path_factory: pytest.TempPathFactory,
    request: pytest.FixtureRequest,
    checkpoint_factory,
    private_server,
):
    root = tmp_path_factory.mktemp("dissected")
    ckpt = checkpoint_factory(root / "ckpt")
    write_synthetic_broden(root / "broden", 16, image_size=28, mask_size=14, seed=0)
    summary = dissect(
        root / "run",
        DissectConfig(str(ckpt), str(root / "broden"), LAYER, units_per_part=64, max_length=2),
        log=lambda _m: None,
    )
    assert summary is not None
    results = root / "run" / "results.csv"
    options = ArchiveOptions(batch_size=2, max_batch_delay_ms=20, dissection=results)
    return private_server(request, root, [(ckpt, MODEL, options)]), ckpt, results


@pytest.mark.parametrize("protocol", ["grpc", "http"])
def test_gradcam_units_carry_formulas(served, protocol: str) -> None:
    server, ckpt, results = served
    x = np.random.default_rng(0).normal(size=(1, 28, 28)).astype(np.float32)
    with server.client(protocol) as client:
        exp = client.explain(MODEL, x, {"gradcam": {}, "gradient": {}}, target=3, normalized=True)
    h = exp.heatmap("gradcam")
    assert h.units, "no unit evidence served"
    assert not exp.heatmap("gradient").units
    dissection = Dissection.load(results, top=5)
    model, _ = load_checkpoint(ckpt)
    gradcam = create_explainer("gradcam", model)
    assert isinstance(gradcam, UnitContributions)
    xs = torch.from_numpy(x)
    rows = gradcam.unit_contributions(xs, 3, LAYER, gradcam.attribute(xs[None], 3), 0)
    assert rows is not None
    expected = [k for k in sorted(range(rows.shape[0]), key=lambda k: (-rows[k, 1], k)) if rows[k, 1] > 0][:5]
    assert [u.unit for u in h.units] == expected
    for u in h.units:
        assert u.layer == LAYER
        assert u.contribution == pytest.approx(rows[u.unit, 1], rel=1e-4, abs=1e-7)
        assert (u.formula, u.iou) == (
            dissection.labels[u.unit].formula,
            pytest.approx(dissection.labels[u.unit].iou),
        )
    assert h.concepts.startswith("class 3 because of unit ")
