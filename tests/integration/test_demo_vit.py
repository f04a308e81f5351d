"""The demo report with the digits ViT beside the CNN (``serve_and_report(..., beside=vit_companion(...))``):
one TorchServe serves the digits SimpleNet and a ViT for the same digits; the ViT's rows (gradient, input x
gradient, Grad-CAM on tokens, LRP with AttnLRP and with CP-LRP) sit under the CNN's, their maps are not
constant, each overlay is the served answer and the served values equal the in-process engine's; the
report says which methods the ViT refused and why (guided backprop: its GELUs)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from xai_client import Client
from xai_client.requests import build_request

from xai_serve.app.serving_section import is_constant, serve_and_report
from xai_serve.app.vit_rows import NAME, ROWS, vit_companion
from xai_serve.explain import ModelContext, explain_detailed
from xai_serve.models import ModelCard, load_checkpoint
from xai_serve.serving.archive import ArchiveOptions
from xai_serve.serving.inputs import decode_input
from xai_serve.testing import write_checkpoint

pytestmark = pytest.mark.integration

MAIN = "digits"


def test_vit_rows_beside_the_cnn(tmp_path: Path, request, private_server, render_report) -> None:
    main = write_checkpoint(tmp_path / "simplenet")
    vit = write_checkpoint(
        tmp_path / "vit", model="vit", model_kwargs={"num_classes": 10, "input_shape": [1, 28, 28]}
    )
    options = ArchiveOptions(batch_size=2, max_batch_delay_ms=5)
    served = private_server(request, tmp_path, [(main, MAIN, options), (vit, NAME, options)])
    n_images = 2
    report = serve_and_report(
        main,
        out_dir=tmp_path / "demo",
        name=MAIN,
        n_images=n_images,
        server=served.config,
        log=lambda *_: None,
        beside=vit_companion(vit),
    )
    text = report.read_text()
    keys = [f"{NAME}: {label}" for label, _m, _p in ROWS]
    for key in keys:  # one row per ViT method, saying which archive answered it
        assert f"<th class='m'>{key}<br>" in text, key
    assert text.count(f"served by <code>{NAME}</code>") == len(ROWS)
    assert f"Refused by <code>{NAME}</code>" in text
    refused = text[text.index(f"Refused by <code>{NAME}</code>") :]
    assert "<code>guided_backprop</code>" in refused and "GELU" in refused.split("</ul>")[0]

    results = json.loads((tmp_path / "demo" / "results.json").read_text())
    assert len(results) == n_images
    for row in results:
        assert set(keys) <= set(row["overlays"]), row["overlays"]
        assert not set(keys) & set(row["constant"]), row["constant"]

    # served == in-process: the report's image asked directly gives the report's PNG, and its values are
    # the in-process engine's on the image the server decoded
    model, card = load_checkpoint(vit, "best")
    context = ModelContext.of(card.mean, card.std)
    image = _small((tmp_path / "demo" / "images" / "00_input.png").read_bytes())
    x = decode_input(build_request(image).input, ModelCard.load(vit / "model.json")).x[None]
    with Client(served.config.grpc_address, "grpc", key_file=served.config.key_file) as client:
        for (label, method, params), key in zip(ROWS, keys, strict=True):
            h = client.explain(NAME, image, {method: dict(params)}, output="both").heatmap(method)
            assert h.values is not None and not is_constant(np.asarray(h.values)), label
            assert (tmp_path / "demo" / "images" / results[0]["overlays"][key]).read_bytes() == h.png, label
            ref = explain_detailed(model, x, {method: dict(params)}, [h.target], context)[method]
            np.testing.assert_allclose(
                h.values, ref.heatmap[0].detach().numpy(), rtol=0, atol=1e-6, err_msg=label
            )

    page = render_report(report)
    assert page.images and all(i["naturalWidth"] > 0 for i in page.images), page.images
    assert page.console_errors == []


def _small(png: bytes) -> bytes:
    """The 28x28 image the report sent (its input PNG is drawn larger for the page)."""
    import io

    from PIL import Image

    img = Image.open(io.BytesIO(png)).resize((28, 28), Image.NEAREST)
    buf = io.BytesIO()
    img.save(buf, format="PNG")
    return buf.getvalue()
