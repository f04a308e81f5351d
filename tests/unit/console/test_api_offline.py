"""The console's API where no model server answers, and every kind of bad input: JSON errors with a 4xx
or 5xx status and a message, never a stack trace; cross-site POSTs get 403."""

from __future__ import annotations

import io
import json
import urllib.error
import urllib.request
import uuid

import numpy as np
import pytest
from PIL import Image


def call(url: str, *, data: bytes | None = None, headers: dict[str, str] | None = None) -> tuple[int, dict]:
    req = urllib.request.Request(url, data=data, headers=headers or {}, method="POST" if data else "GET")
    try:
        with urllib.request.urlopen(req, timeout=30) as resp:
            return resp.status, json.loads(resp.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


def multipart(fields: list[tuple[str, str | tuple[str, bytes]]]) -> tuple[bytes, dict[str, str]]:
    boundary = uuid.uuid4().hex
    out = io.BytesIO()
    for name, value in fields:
        out.write(f"--{boundary}\r\n".encode())
        if isinstance(value, tuple):
            filename, payload = value
            out.write(f'Content-Disposition: form-data; name="{name}"; filename="{filename}"\r\n'.encode())
            out.write(b"Content-Type: application/octet-stream\r\n\r\n" + payload + b"\r\n")
        else:
            out.write(f'Content-Disposition: form-data; name="{name}"\r\n\r\n{value}\r\n'.encode())
    out.write(f"--{boundary}--\r\n".encode())
    return out.getvalue(), {"Content-Type": f"multipart/form-data; boundary={boundary}"}


def png(size: int = 28) -> bytes:
    buf = io.BytesIO()
    Image.fromarray((np.random.default_rng(0).random((size, size)) * 255).astype(np.uint8)).save(buf, "PNG")
    return buf.getvalue()


def explain_form(image: tuple[str, bytes], **extra: str) -> list[tuple[str, str | tuple[str, bytes]]]:
    fields: list[tuple[str, str | tuple[str, bytes]]] = [("image", image), ("model", "tiny")]
    fields += [("methods", extra.pop("methods", "gradient")), ("target", extra.pop("target", ""))]
    fields += [("param", v) for v in extra.values()]
    return fields


def assert_error(status: int, body: dict, expected: int, code: str, words: str) -> None:
    assert status == expected, body
    assert body["error"]["code"] == code
    assert words in body["error"]["message"]
    assert "Traceback" not in json.dumps(body)


def test_the_page_and_its_assets_are_served_without_external_references(console_url: str) -> None:
    with urllib.request.urlopen(console_url + "/", timeout=10) as resp:
        html = resp.read().decode()
        assert resp.headers["content-type"].startswith("text/html")
    assert "/static/console.js" in html and "/static/console.css" in html
    for asset in ("/static/console.js", "/static/console.css"):
        with urllib.request.urlopen(console_url + asset, timeout=10) as resp:
            text = resp.read().decode()
        assert "http://" not in text.replace("http://www.w3.org/2000/svg", "") and "https://" not in text
    assert "https://" not in html and "http://" not in html


def test_health_says_the_model_server_is_down(console_url: str) -> None:
    status, body = call(console_url + "/api/health")
    assert status == 200
    assert body["up"] is False and body["status"] == "UNAVAILABLE"
    assert "secret" not in json.dumps(body)


@pytest.mark.parametrize("path", ["/api/models", "/api/models/tiny/methods"])
def test_model_endpoints_answer_503_while_the_server_is_gone(console_url: str, path: str) -> None:
    status, body = call(console_url + path)
    assert_error(status, body, 503, "UNAVAILABLE", "127.0.0.1")
    assert "secret" not in json.dumps(body)


def test_samples_list_each_dataset(console_url: str) -> None:
    status, body = call(console_url + "/api/samples")
    assert status == 200
    assert {"digits", "pattern_digits"} <= set(body)
    for item in body["digits"]:
        with urllib.request.urlopen(console_url + item["url"], timeout=10) as resp:
            assert resp.read()[:8] == b"\x89PNG\r\n\x1a\n"


@pytest.mark.parametrize(
    ("image", "code", "status", "words"),
    [
        (("notes.png", b"this is text, not a picture"), "INVALID_ARGUMENT", 400, "not an image"),
        (("empty.png", b""), "INVALID_ARGUMENT", 400, "empty"),
        (("big.png", b"\x89PNG" + bytes(70 * 1024)), "INVALID_ARGUMENT", 413, "limit"),
    ],
)
def test_bad_uploads_are_4xx_with_a_message(
    console_url: str, image, code: str, status: int, words: str
) -> None:
    data, headers = multipart(explain_form(image))
    got, body = call(console_url + "/api/explain", data=data, headers=headers)
    assert_error(got, body, status, code, words)


@pytest.mark.parametrize(
    ("extra", "words"),
    [
        ({"methods": " , "}, "at least one method"),
        ({"p": "lrp"}, "METHOD.KEY=VALUE"),
        ({"p": "lrp.composite=epsilon_plus"}, "not requested: lrp"),
        ({"target": "top0"}, "top"),
    ],
)
def test_bad_form_fields_are_400(console_url: str, extra: dict[str, str], words: str) -> None:
    data, headers = multipart(explain_form(("x.png", png()), **extra))
    status, body = call(console_url + "/api/explain", data=data, headers=headers)
    assert_error(status, body, 400, "INVALID_ARGUMENT", words)


def test_missing_fields_are_400(console_url: str) -> None:
    data, headers = multipart([("model", "tiny")])
    status, body = call(console_url + "/api/explain", data=data, headers=headers)
    assert_error(status, body, 400, "INVALID_ARGUMENT", "image")
    assert "methods" in body["error"]["message"]


def test_a_good_request_reaches_the_absent_server_as_503(console_url: str) -> None:
    data, headers = multipart(explain_form(("x.png", png())))
    status, body = call(console_url + "/api/explain", data=data, headers=headers)
    assert_error(status, body, 503, "UNAVAILABLE", "")


@pytest.mark.parametrize(
    ("headers", "allowed"),
    [
        ({"Sec-Fetch-Site": "cross-site"}, False),
        ({"Sec-Fetch-Site": "same-site"}, False),
        ({"Origin": "http://evil.example"}, False),
        ({"Origin": "null"}, False),
        ({"Sec-Fetch-Site": "same-origin"}, True),
        ({}, True),
    ],
)
def test_cross_site_posts_are_refused(console_url: str, headers: dict[str, str], allowed: bool) -> None:
    data, form_headers = multipart(explain_form(("x.png", png())))
    if headers.get("Sec-Fetch-Site") == "same-origin":
        headers = {**headers, "Origin": console_url}
    status, body = call(console_url + "/api/explain", data=data, headers={**form_headers, **headers})
    if allowed:
        assert status == 503, body  # past the guard: the absent model server answers
    else:
        assert_error(status, body, 403, "PERMISSION_DENIED", "")
