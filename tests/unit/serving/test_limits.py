"""Bounded request cost and no silent NaN, through the real service and engine: server-side limits
(rows, iterations, work) answer RESOURCE_EXHAUSTED naming the limit before anything is computed, a
passed client deadline is DEADLINE_EXCEEDED, enum values outside their enum are INVALID_ARGUMENT, a
NaN map is never served, the LRP parameter cache is an LRU of bounded size."""

from __future__ import annotations

import time
from dataclasses import replace

import numpy as np
import pytest
import torch
from xai_client.api.v1 import explain_pb2 as pb
from xai_client.methods import methods_from_describe
from xai_client.requests import build_request

from xai_serve.errors import InvalidArgumentError, ResourceExhaustedError
from xai_serve.explain import list_methods
from xai_serve.serving.limits import CostLimits, check_deadline
from xai_serve.serving.ports import RegistryEngine
from xai_serve.serving.service import ExplainService


def _x(seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).random((1, 28, 28)).astype(np.float32)


def _code(resp: pb.ExplainResponse) -> str:
    return pb.Code.Name(resp.status.code)


@pytest.fixture(scope="module")
def service(model, card):
    return ExplainService(
        "tiny", model, card, cost_limits=CostLimits(max_rows=6, max_iterations=50, max_work=40)
    )


def test_limits_check_names_the_limit() -> None:
    specs = list_methods()
    limits = CostLimits(max_rows=4, max_iterations=20, max_work=30)
    assert limits.check(2, {"gradient": (specs["gradient"], {}), "lrp": (specs["lrp"], {})}) == 4
    with pytest.raises(ResourceExhaustedError, match="max_rows=4"):
        limits.check(3, {"gradient": (specs["gradient"], {}), "lrp": (specs["lrp"], {})})
    with pytest.raises(ResourceExhaustedError, match="max_iterations=20"):
        limits.check(1, {"class_image": (specs["class_image"], {"iterations": "21"})})
    with pytest.raises(ResourceExhaustedError, match="max_iterations=20"):  # the spec's default counts too
        limits.check(1, {"class_image": (specs["class_image"], {})})
    assert limits.check(2, {"class_image": (specs["class_image"], {"iterations": "15"})}) == 30
    with pytest.raises(ResourceExhaustedError, match="max_work=30"):
        limits.check(3, {"class_image": (specs["class_image"], {"iterations": "15"})})


def test_limits_from_config() -> None:
    assert CostLimits.from_config({}) == CostLimits()
    got = CostLimits.from_config({"max_rows": "8", "max_work": 100, "weights_sha256": "x"})
    assert got.max_rows == 8 and got.max_work == 100.0 and got.max_iterations == CostLimits().max_iterations
    assert CostLimits.from_config(got.to_config()) == got
    with pytest.raises(InvalidArgumentError, match="max_rows"):
        CostLimits.from_config({"max_rows": 0})
    with pytest.raises(InvalidArgumentError, match="max_iterations"):
        CostLimits.from_config({"max_iterations": "lots"})


def test_rows_iterations_and_work_are_refused_alone(service) -> None:
    many = {m: {} for m in ("gradient", "input_x_gradient", "guided_backprop")}
    t0 = time.perf_counter()
    resps = service.handle(
        [
            build_request(_x(0), methods=many, target="top3", normalized=True),  # 9 rows > 6
            build_request(_x(1), methods={"class_image": {"iterations": "10000"}}, normalized=True),
            build_request(
                _x(2), methods={"class_image": {"iterations": "45"}}, target="top2", normalized=True
            ),
            build_request(_x(3), methods=["gradient"], target="top2", normalized=True),
        ]
    )
    assert time.perf_counter() - t0 < 30  # 10000 iterations would take minutes: nothing was computed
    assert [_code(r) for r in resps] == ["RESOURCE_EXHAUSTED"] * 3 + ["OK"]
    assert "max_rows=6" in resps[0].status.message and "9 explained rows" in resps[0].status.message
    assert "max_iterations=50" in resps[1].status.message
    assert "max_work=40" in resps[2].status.message
    assert resps[0].status.reason == "ResourceExhaustedError" and not resps[0].heatmaps
    assert len(resps[3].heatmaps) == 2 and resps[3].prediction.top


def test_passed_deadline_is_not_computed(service) -> None:
    late = build_request(_x(0), methods=["gradient"], normalized=True)
    late.deadline_unix_s = time.time() - 1
    ok = build_request(_x(1), methods=["gradient"], normalized=True)
    ok.deadline_unix_s = time.time() + 600
    resps = service.handle([late, ok])
    assert [_code(r) for r in resps] == ["DEADLINE_EXCEEDED", "OK"]
    assert "deadline" in resps[0].status.message and not resps[0].heatmaps
    check_deadline(0.0)  # unset: no deadline


@pytest.mark.parametrize(
    ("field", "value"),
    [("output", 99), ("values.reduction", 42), ("values.value_type", 7)],
)
def test_enum_values_outside_their_enum_are_invalid(service, field: str, value: int) -> None:
    req = build_request(_x(0), methods=["gradient"], normalized=True)
    if field == "output":
        req.output = value
    else:
        setattr(req.values, field.split(".")[1], value)
    resp = service.handle([req])[0]
    assert _code(resp) == "INVALID_ARGUMENT" and field in resp.status.message


def test_zero_stabiliser_is_refused_at_validation(service) -> None:
    for composite in ("zplus", "alpha_beta"):
        req = build_request(
            _x(0), methods={"lrp": {"composite": composite, "stabilizer": "0"}}, normalized=True
        )
        resp = service.handle([req])[0]
        assert _code(resp) == "INVALID_ARGUMENT" and "stabilizer" in resp.status.message


class NanEngine(RegistryEngine):
    """The production engine with every map replaced by NaN (logits, classes and stats kept)."""

    def explain(self, model, x, methods, target, context):
        results = super().explain(model, x, methods, target, context)
        nan = float("nan")
        return {name: replace(r, heatmap=torch.full_like(r.heatmap, nan)) for name, r in results.items()}


def test_a_nan_map_is_never_served(model, card) -> None:
    svc = ExplainService("tiny", model, card, engine=NanEngine())
    resp = svc.handle([build_request(_x(0), methods=["gradient"], normalized=True)])[0]
    assert _code(resp) == "OUT_OF_RANGE" and "NaN" in resp.status.message and not resp.heatmaps


def test_response_names_the_layer_of_layer_methods(service, model) -> None:
    req = build_request(_x(0), methods=["gradcam", "gradient"], normalized=True)
    resp = service.handle([req])[0]
    assert _code(resp) == "OK"
    layers = {h.method: h.layer for h in resp.heatmaps}
    assert layers["gradient"] == ""
    name = layers["gradcam"]
    assert name.startswith("features.")
    out = {}
    handle = model.get_submodule(name).register_forward_hook(lambda _m, _i, o: out.setdefault("o", o))
    with torch.no_grad():
        model(torch.from_numpy(_x(0))[None])
    handle.remove()
    assert out["o"].shape[2] * out["o"].shape[3] > 1


def test_lrp_parameter_cache_is_a_bounded_lru(model, card) -> None:
    torch.manual_seed(0)
    from xai_serve.models import create_model

    fresh = create_model("simplenet_310k", num_classes=10).eval()
    svc = ExplainService("tiny", fresh, card, cost_limits=CostLimits(lrp_cache_entries=12))
    for i in range(6):  # each gamma derives one entry per gamma layer
        req = build_request(
            _x(i), methods={"lrp": {"composite": "gamma", "gamma": str(0.1 + i)}}, normalized=True
        )
        assert _code(svc.handle([req])[0]) == "OK"
        assert svc.context.param_cache.size(fresh) <= 12
    assert svc.context.param_cache.size(fresh) == 12


def test_describe_specs_reach_the_client_types() -> None:
    specs = list_methods()
    infos = methods_from_describe({"methods": {n: s.describe() for n, s in specs.items()}})
    assert list(infos) == sorted(specs)
    lrp = infos["lrp"]
    assert lrp.params["composite"].choices and "epsilon_plus_flat" in lrp.params["composite"].choices
    assert lrp.params["stabilizer"].above == 0.0 and lrp.params["stabilizer"].type == "float"
    assert infos["class_image"].iterations == "iterations" and infos["class_image"].test_params == {
        "iterations": 3
    }
    assert "stabilizer (float, default 1e-06, > 0" in lrp.help()


def test_client_stamps_a_deadline_per_attempt_and_leaves_the_request_alone() -> None:
    from xai_client import Client

    sent: list[float] = []

    class Recorder:  # a transport double: the client, not the transport, is under test here
        def call(self, model, request, *, timeout, explain):
            sent.append(request.deadline_unix_s)
            return pb.ExplainResponse(status=pb.Status(code=pb.OK))

        def close(self) -> None:
            pass

    c = Client("127.0.0.1:1", "grpc", token="t", management_token="m", timeout=7.0)
    c._transport = Recorder()  # type: ignore[assignment]
    req = build_request(_x(0), methods=["gradient"], normalized=True)
    before = time.time()
    c.send("m", req)
    c.send("m", req)
    assert len(sent) == 2 and all(before + 7.0 <= d <= time.time() + 7.0 for d in sent)
    assert req.deadline_unix_s == 0.0  # the caller's message is unchanged: it can be sent again
    req.deadline_unix_s = 123.0
    c.send("m", req)
    assert sent[-1] == 123.0
