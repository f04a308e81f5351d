"""The explanation console against the kserve engine (``xai serve --engine kserve``): a real KServe model
server serving the digits archive on free loopback ports, the console on ``--engine kserve`` over the v2
REST address (``HOST:HTTP_PORT``, the default) and over v2 gRPC (``--protocol grpc``, the REST port as
management address). Through the console's JSON API: the model with its card and methods, two methods
(gradient, LRP with a changed composite) whose values and PNG overlays equal ``Client(protocol="v2")``'s
own answer, bad uploads and requests get a 4xx, Debian's Chromium shows two loaded panels, and a stopped
engine turns ``/api/health`` down."""

from __future__ import annotations

import base64
import io
import json
import shlex
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from xai_serve.console.app import create_app
from xai_serve.console.backend import Backend, ServerOptions
from xai_serve.console.panels import explanation_dict
from xai_serve.console.runner import running
from xai_serve.console.upload import decode_upload
from xai_serve.serving.archive import ArchiveOptions, build_archive
from xai_serve.serving.v2 import kserve_engine
from xai_serve.testing import write_checkpoint

pytestmark = [pytest.mark.integration, pytest.mark.slow]

DIGITS = "tiny"
SAMPLE = Path(__file__).parents[2] / "src/xai_serve/console/static/samples/digits/4.png"
METHODS = {"gradient": {}, "lrp": {"composite": "epsilon"}}


@pytest.fixture(scope="module")
def engine(tmp_path_factory: pytest.TempPathFactory, request: pytest.FixtureRequest):
    root = tmp_path_factory.mktemp("console_kserve")
    build_archive(write_checkpoint(root / "digits"), DIGITS, store=root / "store", options=ArchiveOptions())
    cfg = kserve_engine.KServeConfig.on_free_ports(root / "store", [DIGITS], root / "state")
    request.addfinalizer(lambda: kserve_engine.stop(root / "state"))  # before start: runs on any failure
    return kserve_engine.start(cfg, timeout=180)


def _options(engine, transport: str) -> ServerOptions:
    cfg = engine.config
    if transport == "http":  # `xai console --engine kserve --address HOST:HTTP_PORT`
        return ServerOptions(
            address=f"{cfg.connect_host}:{cfg.http_port}", engine="kserve", key_file=str(cfg.key_file)
        )
    return (
        ServerOptions(  # `... --protocol grpc --address HOST:GRPC_PORT --management-address HOST:HTTP_PORT`
            address=cfg.grpc_address,
            management_address=f"{cfg.connect_host}:{cfg.http_port}",
            protocol="grpc",
            engine="kserve",
            key_file=str(cfg.key_file),
        )
    )


@pytest.fixture(scope="module", params=["http", "grpc"])
def console(engine, request: pytest.FixtureRequest) -> Iterator[str]:
    backend = Backend(_options(engine, request.param))
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
        body.write(
            f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n{value}\r\n'.encode()
        )
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


def pixels_of(data_url: str) -> np.ndarray:
    head, _, payload = data_url.partition(",")
    assert head.endswith(";base64")
    raw = base64.b64decode(payload)
    return (
        np.load(io.BytesIO(raw))
        if head.startswith("data:application")
        else np.asarray(Image.open(io.BytesIO(raw)))
    )


def test_api_models_lists_the_model_with_its_methods(engine, console: str) -> None:
    status, text = get(console + "/api/health")
    assert status == 200 and json.loads(text) == {"up": True, "status": "Healthy"}
    _, text = get(console + "/api/models")
    (model,) = json.loads(text)
    assert model["name"] == DIGITS and model["status"] == "READY"
    assert model["card"]["input_shape"] == [1, 28, 28] and len(model["card"]["labels"]) == 10
    assert {"gradient", "lrp", "gradcam"} <= set(model["methods"])
    _, text = get(console + f"/api/models/{DIGITS}/methods")
    specs = json.loads(text)
    assert "epsilon" in specs["lrp"]["params"]["composite"]["choices"]
    assert specs["gradient"]["params"]["abs"]["type"] == "bool"
    token = engine.config.token()
    assert token and token not in text


def test_api_explain_equals_the_v2_client(engine, console: str, tmp_path: Path) -> None:
    image = SAMPLE.read_bytes()
    fields = [
        ("model", DIGITS),
        ("methods", "gradient,lrp"),
        ("target", "3"),
        ("param", "lrp.composite=epsilon"),
    ]
    answer = post_explain(console, fields, image)
    with engine.config.client("http") as client:
        direct = client.explain(DIGITS, image, METHODS, target=3)
    expected = {h["method"]: h for h in explanation_dict(direct, decode_upload(image))["heatmaps"]}
    assert [s["index"] for s in answer["prediction"]["top"]] == [s.index for s in direct.prediction.top]
    assert sorted(h["method"] for h in answer["heatmaps"]) == ["gradient", "lrp"]
    for h in answer["heatmaps"]:
        assert h["target"] == 3 and h["params"] == METHODS[h["method"]]
        values = pixels_of(h["npy"])
        np.testing.assert_array_equal(values, direct.heatmap(h["method"]).values)
        png = pixels_of(h["png"])
        assert png.shape[:2] == (28, 28)
        np.testing.assert_array_equal(png, pixels_of(expected[h["method"]]["png"]))
    assert "--protocol v2" in answer["command"] and "--param lrp.composite=epsilon" in answer["command"]
    assert engine.config.token() not in answer["_raw"]
    # the "Reproduce" line, run as written (the uploaded file saved as IMAGE.png), gives the same values
    argv = shlex.split(answer["command"])
    assert argv[:2] == ["xai-client", "explain"]
    (tmp_path / "IMAGE.png").write_bytes(image)
    done = subprocess.run(
        [sys.executable, "-m", "xai_client.cli", *argv[1:]],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    for method in METHODS:
        (npy,) = (tmp_path / "explanations").glob(f"IMAGE_{method}*.npy")
        np.testing.assert_array_equal(np.load(npy), direct.heatmap(method).values)


@pytest.mark.parametrize(
    ("fields", "image", "code"),
    [
        ([("model", DIGITS), ("methods", "gradient")], b"not a picture at all", "INVALID_ARGUMENT"),
        (
            [("model", DIGITS), ("methods", "lrp"), ("param", "lrp.composite=nonsense")],
            None,
            "INVALID_ARGUMENT",
        ),
        ([("model", DIGITS), ("methods", "gradient"), ("target", "42")], None, "INVALID_ARGUMENT"),
        ([("model", DIGITS), ("methods", "no_such_method")], None, "INVALID_ARGUMENT"),
        ([("model", "no_such_model"), ("methods", "gradient")], None, "NOT_FOUND"),
    ],
)
def test_api_bad_input_is_4xx(console: str, fields, image, code: str) -> None:
    with pytest.raises(urllib.error.HTTPError) as info:
        post_explain(console, fields, image or SAMPLE.read_bytes())
    body = json.loads(info.value.read())
    assert 400 <= info.value.code < 500 and body["error"]["code"] == code, body
    assert "Traceback" not in json.dumps(body)


def test_page_shows_two_loaded_panels(_browser, console: str) -> None:
    page = _browser.new_page(viewport={"width": 1280, "height": 900})
    errors: list[str] = []
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda e: errors.append(f"page error: {e}"))
    try:
        page.goto(console + "/", wait_until="load")
        page.wait_for_selector(f".card[data-model='{DIGITS}']")
        page.click("button.tab[data-tab=explain]")
        page.select_option("#model", DIGITS)
        page.wait_for_selector(f"#methods[data-model='{DIGITS}'] #m-gradient")
        for name in page.eval_on_selector_all(
            "#methods input[type=checkbox][value]:checked", "e => e.map(x => x.value)"
        ):
            page.uncheck(f"#m-{name}")
        page.check("#m-gradient")
        page.check("#m-lrp")
        page.set_input_files("#file", str(SAMPLE))
        page.click("#run")
        page.wait_for_function(
            "(() => { const i = [...document.querySelectorAll('#panels .panel img.heatmap')];"
            " return i.length === 2 && i.every(x => x.complete && x.naturalWidth === 28); })()",
            timeout=60_000,
        )
        methods = page.eval_on_selector_all("#panels .panel", "ps => ps.map(p => p.dataset.method)")
        assert sorted(methods) == ["gradient", "lrp"]
        assert errors == []
    finally:
        page.close()


def test_the_command_line_with_the_http_address(engine) -> None:
    """``xai console --engine kserve --address HOST:HTTP_PORT --key-file F`` as a user runs it."""
    cfg = engine.config
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = int(s.getsockname()[1])
    cmd = [sys.executable, "-m", "xai_serve.cli", "console", "--engine", "kserve"]
    cmd += [
        "--address",
        f"{cfg.connect_host}:{cfg.http_port}",
        "--key-file",
        str(cfg.key_file),
        "--port",
        str(port),
    ]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        assert line.startswith(f"console: http://127.0.0.1:{port}/"), line
        _, text = get(f"http://127.0.0.1:{port}/api/models")
        assert [m["name"] for m in json.loads(text)] == [DIGITS]
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=20)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 0 and "Traceback" not in err, err


def test_stopped_engine_makes_health_down_and_back(engine, console: str) -> None:
    """Last for each console: stops the engine, then starts it again on the same ports (new tokens in the
    key file, which the console's client re-reads) for the next console."""
    assert kserve_engine.stop(engine.config.state_dir)
    _, text = get(console + "/api/health")
    health = json.loads(text)
    assert health["up"] is False and health["status"] in ("UNAVAILABLE", "DEADLINE_EXCEEDED"), health
    kserve_engine.start(engine.config, timeout=180)
    deadline = time.monotonic() + 30  # as the page polls: a gRPC channel reconnects after its backoff
    while not (health := json.loads(get(console + "/api/health")[1]))["up"] and time.monotonic() < deadline:
        time.sleep(0.5)
    assert health["up"] is True, health
    _, text = get(console + "/api/models")
    assert [m["name"] for m in json.loads(text)] == [DIGITS]
