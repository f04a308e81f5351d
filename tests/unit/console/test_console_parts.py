"""The console's pieces that need no server: it imports no torch, its command line reproduces a request
through the client CLI's own parser, uploads are checked by decoding, `--engine kserve` needs a v2 client."""

from __future__ import annotations

import io
import shlex
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image
from xai_client.cli import build_parser

from xai_serve.console.backend import ServerOptions, make_client
from xai_serve.console.command_line import reproduce
from xai_serve.console.upload import BadUpload, UploadTooLarge, decode_upload
from xai_serve.testing import png_header_only


def test_the_console_imports_no_torch() -> None:
    code = (
        "import sys, xai_serve.cli, xai_serve.console.app, xai_serve.console.runner;"
        "bad = [m for m in ('torch', 'torchvision') if m in sys.modules]; print(bad); sys.exit(bool(bad))"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stdout + done.stderr


def test_the_command_line_parses_with_the_client_cli() -> None:
    line = reproduce(
        model="digits",
        methods=["lrp", "gradcam"],
        params={"lrp": {"composite": "epsilon_plus"}},
        target="yg:3,4:predicted",
        address="127.0.0.1:7070",
        management_address="127.0.0.1:9071",
        protocol="grpc",
        key_file="/tmp/my keys/key_file.json",
    )
    argv = shlex.split(line)
    assert argv[:2] == ["xai-client", "explain"]
    assert "--param" in argv and "lrp.composite=epsilon_plus" in argv
    known = build_parser().parse_args(argv[1:])
    assert known.methods == ["lrp", "gradcam"] and known.params == ["lrp.composite=epsilon_plus"]
    assert known.management_address == "127.0.0.1:9071"
    assert str(known.key_file) == "/tmp/my keys/key_file.json"
    assert known.target == "yg:3,4:predicted"


def _encoded(fmt: str) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(np.zeros((5, 7, 3), dtype=np.uint8)).save(buf, fmt)
    return buf.getvalue()


@pytest.mark.parametrize("fmt", ["PNG", "JPEG", "BMP"])
def test_images_decode_to_rgb(fmt: str) -> None:
    assert decode_upload(_encoded(fmt)).shape == (5, 7, 3)


def test_bad_uploads() -> None:
    with pytest.raises(BadUpload, match="not an image"):
        decode_upload(b"%PDF-1.4 not an image")
    with pytest.raises(UploadTooLarge, match="limit"):
        decode_upload(_encoded("PNG"), limit=10)
    with pytest.raises(BadUpload, match="pixels"):
        decode_upload(png_header_only(5000, 5000))


def test_kserve_engine_needs_a_v2_client() -> None:
    options = ServerOptions(address="127.0.0.1:1", engine="kserve")
    try:
        client = make_client(options)
    except ValueError as exc:
        assert "protocol='v2'" in str(exc)
    else:  # the v2 client exists (issue 23): the console uses it
        assert client.protocol == "v2"
        client.close()


@pytest.mark.parametrize(
    ("options", "address", "protocol"),
    [
        (ServerOptions(address="h:9000", engine="kserve"), "http://h:9000", "v2"),  # REST by default
        (ServerOptions(address="http://h:9000", engine="kserve"), "http://h:9000", "v2"),
        (ServerOptions(engine="kserve"), "http://127.0.0.1:8080", "v2"),  # `xai serve --engine kserve`'s
        (ServerOptions(address="h:9001", engine="kserve", protocol="grpc"), "h:9001", "v2"),
        (ServerOptions(address="h:7070"), "h:7070", "grpc"),
        (ServerOptions(address="h:8080", protocol="http"), "h:8080", "http"),
    ],
)
def test_engine_and_protocol_pick_the_client_address(
    options: ServerOptions, address: str, protocol: str
) -> None:
    assert (options.client_address, options.client_protocol) == (address, protocol)
    client = make_client(options)
    assert (client.address, client.protocol) == (address, protocol)
    client.close()


def test_a_bad_protocol_is_refused_by_name() -> None:
    with pytest.raises(ValueError, match="protocol must be grpc or http, not 'v2'"):
        make_client(ServerOptions(address="h:1", engine="kserve", protocol="v2"))
