"""The demo report's layout in headless Chromium, from rows as `serve_and_report` collects them
(10 images, every registered method): verdict first, it fits a 1280-pixel-wide window, every image
loads, no console error, and a constant map says why it is constant."""

from __future__ import annotations

import io

import numpy as np
from PIL import Image

from xai_serve.app import serving_section as demo
from xai_serve.explain import list_methods


def _png(seed: int) -> bytes:
    arr = (np.random.default_rng(seed).random((112, 112, 3)) * 255).astype(np.uint8)
    buf = io.BytesIO()
    Image.fromarray(arr).save(buf, format="PNG")
    return buf.getvalue()


def _strip(seed: int, panels: int = 5) -> bytes:
    arr = (np.random.default_rng(seed).random((112, 112 * panels, 3)) * 255).astype(np.uint8)
    buf = io.BytesIO()
    Image.fromarray(arr).save(buf, format="PNG")
    return buf.getvalue()


def _write_images(folder, i: int, methods: list[str], strip: str | None = None) -> dict[str, str]:
    """Image ``i``'s input and one overlay per method (``strip``'s a five-panel strip) in ``folder``;
    method -> overlay file name."""
    (folder / f"{i:02d}_input.png").write_bytes(_png(i))
    overlays = {}
    for m in methods:
        (folder / f"{i:02d}_{m}.png").write_bytes(_strip(i) if m == strip else _png(1000 + i))
        overlays[m] = f"{i:02d}_{m}.png"
    return overlays


def _rendered(render_report, page_path, images: int):
    """The page in Chromium: it fits 1280 pixels, shows ``images`` images that all loaded, no console
    error."""
    page = render_report(page_path)
    assert page.scroll_width <= 1280, f"{page.scroll_width} px wide"
    assert len(page.images) == images
    assert all(i["naturalWidth"] > 0 for i in page.images)
    assert page.console_errors == []
    return page


def test_demo_report_is_verdict_first_fits_1280_and_explains_constant_maps(tmp_path, render_report):
    specs = list_methods()
    methods = sorted(specs)
    cam = next(m for m in methods if "cam" in m)  # Grad-CAM: its own reason for a constant map
    (tmp_path / "images").mkdir()
    rows = []
    for i in range(10):
        overlays = _write_images(tmp_path / "images", i, methods)
        top = [(str(i), 0.9), (str((i + 1) % 10), 0.05), (str((i + 2) % 10), 0.01)]
        constant = {cam: 0.0} if i < 3 else {}
        if i == 5:
            constant["gradient"] = 0.0
        rows.append(
            demo.Row(i, str(i if i else 7), f"{i:02d}_input.png", top, overlays, {}, 40.0 + i, {}, constant)
        )
    (tmp_path / "model_graph.png").write_bytes(_png(7))
    html = demo.render_report(rows, methods, specs, "digits", {"archive": 1.0}, 12.0, graph="model_graph.png")
    (tmp_path / "report.html").write_text(html)
    assert html.index('class="verdict"') < html.index("<table") < html.index("<details>")
    assert "9/10</b> test images predicted correctly" in html
    assert f"{cam} on 3/10 images" in html and "gradient on 1/10 images" in html
    assert html.count("class='why'") == 4 and html.count("ReLU clips it to 0") == 3
    page = _rendered(render_report, tmp_path / "report.html", 10 * (len(methods) + 1) + 1)  # + the graph
    assert page.screenshot.stat().st_size > 10_000


def test_a_float32_constant_map_is_constant_and_the_decomposed_row_says_why() -> None:
    """An upsampled 1x1 map (the decomposed method on SimpleNet's last stage) differs from itself only
    by float32 rounding: constant; a map with any real spread is not."""
    flat = np.full((28, 28), 3.2, np.float32)
    flat[5, 7] += 2.5e-6  # the rounding an upsampled 1x1 map shows
    assert demo.is_constant(flat) and demo.is_constant(np.zeros((4, 4)))
    varied = flat.copy()
    varied[0, 0] += 0.01
    assert not demo.is_constant(varied)
    assert "1x1" in demo.constant_reason("decomposed", 3.2) and "decomposed.html" in demo.constant_reason(
        "decomposed", 3.2
    )


def test_a_filter_strip_shows_its_class_map_in_the_table_and_whole_below_it(tmp_path, render_report):
    """The decomposed overlay is a strip (class map, then the top filters' maps): its table cell shows the
    first panel at the cell's size, and a section below the table shows every strip whole, naming the
    archive that answered; the page still fits 1280 pixels."""
    specs = list_methods()
    methods = sorted(specs)
    (tmp_path / "images").mkdir()
    rows = []
    for i in range(10):
        overlays = _write_images(tmp_path / "images", i, methods, strip="decomposed")
        top = [(str(i), 0.9)]
        rows.append(demo.Row(i, str(i), f"{i:02d}_input.png", top, overlays, {}, 40.0, strips=["decomposed"]))
    html = demo.render_report(
        rows, methods, specs, "digits", {}, 1.0, sources={"decomposed": ("digits_resnet20", "7x7 maps")}
    )
    (tmp_path / "report.html").write_text(html)
    assert (
        html.index("</table>")
        < html.index("the class map and the top filters")
        < html.index("latency per image")
    )
    assert html.count("served by <code>digits_resnet20</code>") == 2  # the row's header and the section
    assert html.count('class="strip"') == 10 and html.count('class="crop"') == 10
    _rendered(render_report, tmp_path / "report.html", 10 * (len(methods) + 1) + 10)  # + each strip whole
