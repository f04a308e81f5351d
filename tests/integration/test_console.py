"""The explanation console against a real TorchServe serving a digits SimpleNet and a General Pattern Theory
ResGPTNet: its JSON API (the answers equal the client's own, the token never reaches the browser) and the
page in Debian's Chromium (Playwright): upload, two methods, a changed LRP composite re-explains only LRP,
a click on a GPT pixel gives that component's heatmap, a text file gives a message, Compare shows two
models, and a stopped model server shows a banner that goes away when the server is back.

``XAI_CONSOLE_SCREENSHOT=docs/console.png`` also writes the README's screenshot."""

from __future__ import annotations

import base64
import io
import json
import os
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from xai_serve.console.app import create_app
from xai_serve.console.backend import Backend, ServerOptions
from xai_serve.console.runner import running
from xai_serve.serving.archive import ArchiveOptions
from xai_serve.serving.server import start, stop
from xai_serve.testing import write_checkpoint, write_gpt_checkpoint

pytestmark = [pytest.mark.integration, pytest.mark.slow]

DIGITS, GPT = "tiny", "gpt_tiny"
DISSECTED = "features.36"  # the digits archive carries a dissection of this layer (`xai dissect`)
CERTIFIED = ["gradient"]  # the digits archive carries credentials of these methods (`xai certify`)
SAMPLE = Path(__file__).parents[2] / "src/xai_serve/console/static/samples/digits/4.png"


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory, request: pytest.FixtureRequest, private_server):
    from xai_serve.data.synthetic_broden import write_synthetic_broden
    from xai_serve.dissection.runner import DissectConfig, dissect
    from xai_serve.evaluation.certify import CertifyOptions, certify

    root = tmp_path_factory.mktemp("console")
    options = ArchiveOptions(batch_size=4, max_batch_delay_ms=5)
    digits = write_checkpoint(root / "digits")
    certify_options = CertifyOptions(methods=CERTIFIED, samples=4, batch_size=4, split="val")
    creds = certify(digits, root / "certify", certify_options)
    write_synthetic_broden(root / "broden", 16, image_size=28, mask_size=14, seed=0)
    config = DissectConfig(str(digits), str(root / "broden"), DISSECTED, units_per_part=64, max_length=2)
    assert dissect(root / "dissect", config, log=lambda _m: None) is not None
    evidence = ArchiveOptions(
        batch_size=4, max_batch_delay_ms=5, credentials=creds, dissection=root / "dissect" / "results.csv"
    )
    archives = [
        (digits, DIGITS, evidence),
        (write_gpt_checkpoint(root / "gpt", width=8, generator_bias=2.0), GPT, options),
    ]
    return private_server(request, root, archives, timeout=240)


@pytest.fixture(scope="module")
def console(server) -> Iterator[str]:
    cfg = server.config
    backend = Backend(
        ServerOptions(
            address=cfg.grpc_address,
            management_address=cfg.grpc_management_address,
            key_file=str(cfg.key_file),
            timeout=120,
        )
    )
    with running(create_app(backend)) as url:
        yield url
    backend.close()


def get(url: str) -> tuple[int, str]:
    with urllib.request.urlopen(url, timeout=60) as resp:
        return resp.status, resp.read().decode()


def post_explain(url: str, fields: list[tuple[str, str]], image: bytes) -> dict:
    boundary = "consoleboundary"
    body = io.BytesIO()
    for name, value in fields:
        head = f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n'
        body.write(f"{head}{value}\r\n".encode())
    body.write(f'--{boundary}\r\nContent-Disposition: form-data; name="image"; filename="x.png"\r\n'.encode())
    body.write(b"Content-Type: image/png\r\n\r\n" + image + f"\r\n--{boundary}--\r\n".encode())
    req = urllib.request.Request(
        url + "/api/explain",
        data=body.getvalue(),
        headers={"Content-Type": f"multipart/form-data; boundary={boundary}"},
        method="POST",
    )
    with urllib.request.urlopen(req, timeout=120) as resp:
        text = resp.read().decode()
    return json.loads(text) | {"_raw": text}


def decode_data_url(url: str) -> bytes:
    head, _, payload = url.partition(",")
    assert head.endswith(";base64")
    return base64.b64decode(payload)


def test_api_models_and_methods(server, console: str) -> None:
    status, text = get(console + "/api/models")
    assert status == 200
    models = {m["name"]: m for m in json.loads(text)}
    assert set(models) == {DIGITS, GPT}
    assert models[DIGITS]["status"] == "READY" and models[DIGITS]["card"]["input_shape"] == [1, 28, 28]
    assert models[GPT]["card"]["outputs"] == ["y", "yg", "ys"]
    assert "lrp" in models[DIGITS]["methods"]
    assert models[DIGITS]["credentials"]["gradient"]["certified"] is True
    assert "lrp" not in models[DIGITS]["credentials"] and models[GPT]["credentials"] == {}
    _, text = get(console + f"/api/models/{DIGITS}/methods")
    specs = json.loads(text)
    assert "epsilon" in specs["lrp"]["params"]["composite"]["choices"]
    assert specs["gradient"]["params"]["abs"]["type"] == "bool"
    for token in server.tokens.values():
        assert token not in text


def test_api_explain_equals_the_client(server, console: str) -> None:
    image = SAMPLE.read_bytes()
    answer = post_explain(
        console,
        [("model", DIGITS), ("methods", "lrp,gradient"), ("target", "3"), ("param", "lrp.composite=epsilon")],
        image,
    )
    with server.client("grpc") as c:
        direct = c.explain(DIGITS, image, {"lrp": {"composite": "epsilon"}, "gradient": {}}, target=3)
    assert [s["index"] for s in answer["prediction"]["top"]] == [s.index for s in direct.prediction.top]
    for h in answer["heatmaps"]:
        assert h["target"] == 3
        values = np.load(io.BytesIO(decode_data_url(h["npy"])))
        np.testing.assert_array_equal(values, direct.heatmap(h["method"]).values)
        png = Image.open(io.BytesIO(decode_data_url(h["png"])))
        assert png.size == (28, 28)
        assert h["colour_bar"].startswith("data:image/png;base64,")
        assert (h["credential"] or {}).get("certified", False) == (h["method"] in CERTIFIED)
    assert {h["method"]: h["params"] for h in answer["heatmaps"]} == {
        "lrp": {"composite": "epsilon"},
        "gradient": {},
    }
    assert "--param lrp.composite=epsilon" in answer["command"] and "--target 3" in answer["command"]
    for token in server.tokens.values():
        assert token not in answer["_raw"]


def test_api_bad_requests_to_the_real_server_are_4xx(console: str) -> None:
    import urllib.error

    with pytest.raises(urllib.error.HTTPError) as info:
        get(console + "/api/models/no_such_model/methods")
    assert info.value.code == 404
    assert json.loads(info.value.read())["error"]["code"] == "NOT_FOUND"
    for fields, code in (
        ([("model", DIGITS), ("methods", "no_such_method")], "NOT_FOUND"),
        ([("model", DIGITS), ("methods", "lrp"), ("param", "lrp.composite=nonsense")], "INVALID_ARGUMENT"),
        ([("model", DIGITS), ("methods", "gradient"), ("target", "42")], "INVALID_ARGUMENT"),
    ):
        with pytest.raises(urllib.error.HTTPError) as info:
            post_explain(console, fields, SAMPLE.read_bytes())
        body = json.loads(info.value.read())
        assert info.value.code in (400, 404) and body["error"]["code"] == code, body
        assert "Traceback" not in json.dumps(body)


def test_api_decomposed_filters_are_evidence(console: str) -> None:
    answer = post_explain(console, [("model", DIGITS), ("methods", "decomposed")], SAMPLE.read_bytes())
    (h,) = answer["heatmaps"]
    assert 0 < len(h["filters"]) <= 6
    contributions = [f["contribution"] for f in h["filters"]]
    assert contributions == sorted(contributions, key=abs, reverse=True) or contributions == sorted(
        contributions, reverse=True
    )
    for f in h["filters"]:
        assert Image.open(io.BytesIO(decode_data_url(f["png"]))).size == (28, 28)


def test_api_gpt_outputs_and_component_target(console: str) -> None:
    image = (Path(SAMPLE).parent.parent / "pattern_digits" / "4.png").read_bytes()
    fields = [("model", GPT), ("methods", "gradient"), ("target", "yg:5,6:predicted")]
    answer = post_explain(console, fields, image)
    outputs = answer["prediction"]["outputs"]
    assert np.asarray(outputs["yg"]).shape == (28, 28) and np.asarray(outputs["ys"]).shape == (28, 28)
    (h,) = answer["heatmaps"]
    assert h["component"].startswith("yg:5,6:")


def _page(browser, url: str):
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    errors: list[str] = []
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda e: errors.append(f"page error: {e}"))
    posts: list[str] = []
    page.on("request", lambda r: posts.append(r.url) if r.method == "POST" else None)
    page.goto(url + "/", wait_until="load")
    page.wait_for_selector(f".card[data-model='{DIGITS}']")
    return page, errors, posts


def _choose(page, model: str, methods: tuple[str, ...]) -> None:
    """On the Explain page: ``model`` and exactly ``methods`` (once the method list shows that model's)."""
    page.select_option("#model", model)
    page.wait_for_selector(f"#methods[data-model='{model}'] #m-{methods[0]}")
    checked = page.eval_on_selector_all(
        "#methods input[type=checkbox][value]:checked", "e => e.map(x => x.value)"
    )
    for name in checked:
        if name not in methods:
            page.uncheck(f"#m-{name}")
    for name in methods:
        page.check(f"#m-{name}")


def _loaded(page, selector: str) -> list[int]:
    page.wait_for_function(
        f"(() => {{ const i = [...document.querySelectorAll({selector!r})];"
        " return i.length > 0 && i.every(x => x.complete && x.naturalWidth > 0); })()",
        timeout=60_000,
    )
    return page.eval_on_selector_all(selector, "els => els.map(e => e.naturalWidth)")


def test_page_explains_two_methods_and_reexplains_only_lrp(_browser, console: str, tmp_path: Path) -> None:
    page, errors, posts = _page(_browser, console)
    try:
        page.click("button.tab[data-tab=explain]")
        _choose(page, DIGITS, ("gradient", "lrp"))
        page.set_input_files("#file", str(SAMPLE))
        page.click("#run")
        widths = _loaded(page, "#panels .panel img.heatmap")
        assert len(widths) == 2 and all(w == 28 for w in widths)
        assert page.locator("#topk rect").count() == 5
        badge = page.inner_text("#panels .panel[data-method=gradient] h3 .badge")
        assert "sanity" in badge and "AOPC" in badge
        assert page.inner_text("#panels .panel[data-method=lrp] h3 .badge") == "not certified"
        card_badge = page.inner_text(
            f".card[data-model='{DIGITS}'] .methods-list li:has-text('gradient') .badge"
        )
        assert "sanity" in card_badge
        assert "xai-client explain" in page.inner_text("#command")
        assert errors == []
        shot = os.environ.get("XAI_CONSOLE_SCREENSHOT")
        page.screenshot(path=shot or str(tmp_path / "console.png"), full_page=True)

        lrp_before = page.get_attribute("#panels .panel[data-method=lrp] img.heatmap", "src")
        grad_before = page.get_attribute("#panels .panel[data-method=gradient] img.heatmap", "src")
        n_posts = len(posts)
        page.select_option("#p-lrp-composite", "epsilon")
        page.wait_for_function(
            "(() => { const p = document.querySelector('#panels .panel[data-method=lrp]');"
            " return p && !p.classList.contains('busy') && p.innerText.includes('composite=epsilon'); })()",
            timeout=60_000,
        )
        _loaded(page, "#panels .panel img.heatmap")
        assert page.get_attribute("#panels .panel[data-method=lrp] img.heatmap", "src") != lrp_before
        assert page.get_attribute("#panels .panel[data-method=gradient] img.heatmap", "src") == grad_before
        assert len(posts) == n_posts + 1  # one request, for LRP only
        assert errors == []
    finally:
        page.close()


def test_page_gpt_pixel_click_gives_a_component_heatmap(_browser, console: str) -> None:
    page, errors, _ = _page(_browser, console)
    try:
        page.click("button.tab[data-tab=explain]")
        _choose(page, GPT, ("gradient",))
        page.click("#samples button[data-sample='4']")
        page.wait_for_selector("#preview:not([hidden])")
        page.click("#run")
        _loaded(page, "#panels .panel img.heatmap")
        page.click("#gpt-maps canvas[data-output=yg]", position={"x": 6 * 8 + 3, "y": 5 * 8 + 3})
        _loaded(page, "#component-panels .panel img.heatmap")
        assert "yg:5,6:" in page.inner_text("#component-panels .panel h3")
        assert errors == []
    finally:
        page.close()


def test_page_compare_two_models(_browser, console: str) -> None:
    page, errors, _ = _page(_browser, console)
    try:
        page.click("button.tab[data-tab=explain]")
        page.set_input_files("#file", str(SAMPLE))
        page.click("button.tab[data-tab=compare]")
        page.select_option("#cmp-a", DIGITS)
        page.select_option("#cmp-b", GPT)
        for box in page.query_selector_all("#cmp-methods input:checked"):
            box.uncheck()
        page.check("#cmp-methods input[value=gradient]")
        page.click("#cmp-run")
        _loaded(page, "#cmp-col-a .panel img.heatmap")
        _loaded(page, "#cmp-col-b .panel img.heatmap")
        assert DIGITS in page.inner_text("#cmp-col-a h2") and GPT in page.inner_text("#cmp-col-b h2")
        assert errors == []
    finally:
        page.close()


def test_page_dissected_units_with_formulas(_browser, console: str) -> None:
    page, errors, _ = _page(_browser, console)
    try:
        page.click("button.tab[data-tab=explain]")
        _choose(page, DIGITS, ("gradcam",))
        page.set_input_files("#file", str(SAMPLE))
        page.click("#run")
        _loaded(page, "#panels .panel[data-method=gradcam] img.heatmap")
        units = page.inner_text("#panels .panel[data-method=gradcam] .units")
        assert "unit " in units and "IoU" in units and "`" in units
        assert f"dissected units of {DISSECTED}" in page.inner_text("#panels .panel[data-method=gradcam]")
        assert errors == []
    finally:
        page.close()


def test_page_text_file_gives_a_message(_browser, console: str, tmp_path: Path) -> None:
    notes = tmp_path / "notes.png"
    notes.write_text("not a picture at all")
    page, _, _ = _page(_browser, console)
    try:
        page.click("button.tab[data-tab=explain]")
        _choose(page, DIGITS, ("gradient",))
        page.set_input_files("#file", str(notes))
        page.click("#run")
        page.wait_for_selector("#error:not([hidden])")
        assert "not an image" in page.inner_text("#error")
        assert "Traceback" not in page.content()
    finally:
        page.close()


def test_page_banner_when_the_server_stops_and_recovery(_browser, server, console: str) -> None:
    """Last in the module: it stops the module's TorchServe (and starts it again on the same ports)."""
    page, _, _ = _page(_browser, console)
    try:
        assert page.is_hidden("#banner")
        stop(server.config.state_dir)
        page.wait_for_selector("#banner:not([hidden])", timeout=30_000)
        assert "not answering" in page.inner_text("#banner")
        start(server.config, timeout=240)  # new tokens in the key file: the client re-reads them
        page.wait_for_selector("#banner", state="hidden", timeout=60_000)
        page.wait_for_selector(f".card[data-model='{GPT}']")
        page.click("button.tab[data-tab=explain]")  # explanations work again (with the new tokens)
        _choose(page, DIGITS, ("gradient",))
        page.set_input_files("#file", str(SAMPLE))
        page.click("#run")
        _loaded(page, "#panels .panel[data-method=gradient] img.heatmap")
    finally:
        page.close()
