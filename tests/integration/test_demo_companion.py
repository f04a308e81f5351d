"""The demo report with a companion archive (``serve_and_report(..., companion=...)``): one TorchServe
serves the digits SimpleNet and a ResNet-20 for the same digits; the ``decomposed`` row comes from the
ResNet-20 (7x7 last maps, so its filter maps have spatial extent) and says which archive answered it,
while every other row is the SimpleNet's."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from xai_client import Client

from xai_serve.app.serving_section import Companion, is_constant, serve_and_report
from xai_serve.explain import list_methods
from xai_serve.serving.archive import ArchiveOptions
from xai_serve.testing import write_checkpoint

pytestmark = pytest.mark.integration

MAIN, OTHER = "digits", "digits_resnet20"


def test_decomposed_row_comes_from_the_companion(tmp_path: Path, request, private_server, render_report):
    main = write_checkpoint(tmp_path / "simplenet")
    resnet = write_checkpoint(
        tmp_path / "resnet20", model="resnet20", model_kwargs={"num_classes": 10, "in_chans": 1}
    )
    options = ArchiveOptions(batch_size=2, max_batch_delay_ms=5)
    served = private_server(request, tmp_path, [(main, MAIN, options), (resnet, OTHER, options)])
    companion = Companion(OTHER, resnet, ("decomposed",), None, "ResNet-20, 7x7 last maps")
    report = serve_and_report(
        main,
        out_dir=tmp_path / "demo",
        name=MAIN,
        n_images=2,
        server=served.config,
        log=lambda *_: None,
        companion=companion,
    )
    text = report.read_text()
    assert f"served by <code>{OTHER}</code>: ResNet-20, 7x7 last maps" in text
    assert text.count("served by <code>") == 2  # the decomposed row and its section of whole strips
    assert "decomposed on" not in text  # the verdict lists the methods whose maps were constant

    # the decomposed overlay is the companion's answer: asked directly for the same image, it gives the same
    # PNG, and its map is not uniform
    image = (tmp_path / "demo" / "images" / "00_input.png").read_bytes()
    with Client(served.config.grpc_address, "grpc", key_file=served.config.key_file) as client:
        params = dict(list_methods()["decomposed"].demo_params)
        direct = client.explain(OTHER, _small(image), {"decomposed": params}, output="both").heatmap(
            "decomposed"
        )
    assert not is_constant(np.asarray(direct.values))
    assert (tmp_path / "demo" / "images" / "00_decomposed.png").read_bytes() == direct.png

    page = render_report(report)
    assert page.images and all(i["naturalWidth"] > 0 for i in page.images), page.images
    assert page.console_errors == []


def _small(png: bytes) -> bytes:
    """The 28x28 image the report sent (its input PNG is drawn 8x larger for the page)."""
    import io

    from PIL import Image

    img = Image.open(io.BytesIO(png))
    return _to_png(img.resize((28, 28), Image.NEAREST))


def _to_png(img) -> bytes:
    import io

    buf = io.BytesIO()
    img.save(buf, format="PNG")
    return buf.getvalue()
