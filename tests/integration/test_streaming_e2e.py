"""Against a real TorchServe (a private one: cost limits that allow a long class_image, the explanation
cache on): a streamed answer over gRPC brings progress messages (class_image: with its current image)
before the final answer, which equals the unary answer; a streamed request that times out frees the
worker within one iteration (the next request is answered within 2 s); a repeated request is answered
from the cache (Timings.cached) bit-identically, and the cache counters reach Prometheus."""

from __future__ import annotations

import time
import urllib.request

import numpy as np
import pytest
from xai_client import DeadlineExceeded, Explanation
from xai_client.api.v1 import explain_pb2 as pb
from xai_client.requests import build_request
from xai_client.streaming import Progress

from xai_serve.serving.archive import ArchiveOptions
from xai_serve.serving.limits import CostLimits
from xai_serve.testing import write_checkpoint

pytestmark = pytest.mark.integration

MODEL = "long"
X = np.random.default_rng(5).normal(size=(1, 28, 28)).astype(np.float32)


@pytest.fixture(scope="module")
def server(private_server, request, tmp_path_factory):
    root = tmp_path_factory.mktemp("streaming")
    ckpt = write_checkpoint(root / "ckpt")
    options = ArchiveOptions(
        batch_size=1,
        max_batch_delay_ms=5,
        limits=CostLimits(max_iterations=10000, max_work=1e9),
        cache_mib=4.0,
    )
    return private_server(request, root, [(ckpt, MODEL, options)])


def test_streamed_class_image_sends_progress_then_the_answer(server):
    methods = {"class_image": {"iterations": "300"}}
    with server.client("grpc", timeout=120) as c:
        items = list(c.explain_stream(MODEL, X, methods, target=3, normalized=True))
        unary = c.explain(MODEL, X, methods, target=3, normalized=True)
    progress = [i for i in items if isinstance(i, Progress)]
    assert isinstance(items[-1], Explanation) and len(progress) == len(items) - 1
    assert progress, "no progress message arrived before the answer"
    assert all(p.method == "class_image" and 0 < p.fraction <= 1 for p in progress)
    assert [p.done for p in progress] == sorted(p.done for p in progress)
    assert progress[0].image is not None and progress[0].image.shape == (1, 28, 28)
    np.testing.assert_array_equal(
        items[-1].heatmap("class_image").values, unary.heatmap("class_image").values
    )


def test_a_timed_out_stream_frees_the_worker_within_one_iteration(server):
    methods = {"class_image": {"iterations": "10000"}}  # far longer than the 1 s the client waits
    with server.client("grpc", timeout=1.0, retries=0) as c, pytest.raises(DeadlineExceeded):
        for _ in c.explain_stream(MODEL, X, methods, target=3, normalized=True):
            pass
    t0 = time.perf_counter()
    with server.client("grpc", timeout=30) as c:
        c.explain(MODEL, X, ["gradient"], target=3, normalized=True)
    assert time.perf_counter() - t0 < 2.0


def test_a_repeated_request_is_answered_from_the_cache(server):
    req = build_request(X, methods={"integrated_gradients": {"n_steps": "8"}}, target=2, normalized=True)
    with server.client("grpc", timeout=60) as c:
        first, second = c.send(MODEL, req), c.send(MODEL, req)
    assert first.status.code == pb.OK and not first.timings.cached and second.timings.cached
    assert [h.SerializeToString() for h in first.heatmaps] == [h.SerializeToString() for h in second.heatmaps]
    text = urllib.request.urlopen(f"{server.config.metrics_url}/metrics", timeout=30).read().decode()
    assert f'xai_cache_hits_total{{model="{MODEL}",' in text
    assert f'xai_cache_misses_total{{model="{MODEL}",' in text
    assert f'xai_cache_bytes{{model="{MODEL}",' in text


def test_client_cli_shows_a_progress_bar(server, tmp_path, capsys):
    from PIL import Image
    from xai_client.cli import main

    image = tmp_path / "digit.png"
    Image.fromarray((np.random.default_rng(0).random((28, 28)) * 255).astype(np.uint8)).save(image)
    tokens = server.config.key_file
    args = ["explain", str(image), "--model", MODEL, "--method", "class_image", "--target", "3"]
    args += ["--out", str(tmp_path / "out"), "--address", server.config.grpc_address]
    args += ["--key-file", str(tokens), "--progress", "--timeout", "120"]
    assert main(args) == 0
    err = capsys.readouterr().err
    assert "class_image [" in err and "100.0%" in err
    assert any(p.name.startswith("digit") for p in (tmp_path / "out").iterdir())
