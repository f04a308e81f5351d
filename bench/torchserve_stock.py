"""Ours vs TorchServe's stock ``image_classifier`` handler on the same ResNet-18 (224×224, random weights,
one TorchServe, sequential requests from one client): ``/predictions`` latency, and explanation latency of
ours (gRPC and HTTP, several methods) against the stock ``/explanations`` (Captum IntegratedGradients,
n_steps=15, answered as a JSON nested list). Ratios are to the stock handler's figure of the same case.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from bench import servers
from bench.common import Measurement, summarise, time_call

STOCK_PREDICT = "stock /predictions (HTTP, image_classifier)"
STOCK_EXPLAIN = "stock /explanations (HTTP, Captum IG n_steps=15, JSON list)"


def run(quick: bool) -> list[Measurement]:
    running = servers.resnet18()
    image = servers.test_image()
    warmup, runs = (1, 5) if quick else (2, 20)
    grpc = running.client("grpc")
    http = running.client("http")
    ours, stock = servers.OURS, servers.STOCK
    sizes: dict[str, int] = {}

    def stock_call(path: str, name: str) -> Callable[[], object]:
        def call() -> object:
            body = running.post(path, image)
            sizes[name] = len(body)
            return body

        return call

    predict_case = "predict, resnet18 224x224 B=1, sequential"
    explain_case = "explain, resnet18 224x224 B=1, sequential"

    def explain(client: Any, *methods: str) -> Callable[[], object]:
        return lambda: client.explain(ours, image, list(methods))

    def compact(client: Any, method: str) -> Callable[[], object]:  # issue 16: ExplainRequest.values
        return lambda: client.explain(ours, image, [method], reduction="sum", value_type="float16")

    plans: list[tuple[str, str, str | None, Callable[[], object]]] = [
        (predict_case, STOCK_PREDICT, None, stock_call(f"/predictions/{stock}", STOCK_PREDICT)),
        (predict_case, "ours predict (gRPC)", STOCK_PREDICT, lambda: grpc.predict(ours, image)),
        (predict_case, "ours predict (HTTP, protobuf)", STOCK_PREDICT, lambda: http.predict(ours, image)),
        (explain_case, STOCK_EXPLAIN, None, stock_call(f"/explanations/{stock}", STOCK_EXPLAIN)),
        (explain_case, "ours gradient (gRPC)", STOCK_EXPLAIN, explain(grpc, "gradient")),
        (explain_case, "ours gradient (HTTP, protobuf)", STOCK_EXPLAIN, explain(http, "gradient")),
        (explain_case, "ours gradcam (gRPC)", STOCK_EXPLAIN, explain(grpc, "gradcam")),
        (explain_case, "ours guided_backprop (gRPC)", STOCK_EXPLAIN, explain(grpc, "guided_backprop")),
        (explain_case, "ours lrp (gRPC)", STOCK_EXPLAIN, explain(grpc, "lrp")),
        (explain_case, COMPACT_LRP, STOCK_EXPLAIN, compact(grpc, "lrp")),
        (explain_case, "ours lrp (HTTP, protobuf, sum-reduced float16)", STOCK_EXPLAIN, compact(http, "lrp")),
        (explain_case, "ours gradient (gRPC, sum-reduced float16)", STOCK_EXPLAIN, compact(grpc, "gradient")),
    ]
    rows = []
    try:
        for case, name, baseline, call in plans:
            try:
                samples = time_call(call, warmup=warmup, runs=runs)
            except Exception as exc:  # one failing case is reported, the others still run
                rows.append(
                    Measurement(
                        "torchserve_stock",
                        case,
                        name,
                        "ms",
                        float("nan"),
                        baseline=baseline,
                        extra={"error": repr(exc)},
                    )
                )
                continue
            med, q1, q3 = summarise(samples, 1000.0)
            extra = {"response_bytes": sizes[name]} if name in sizes else {}
            rows.append(
                Measurement(
                    "torchserve_stock",
                    case,
                    name,
                    "ms",
                    med,
                    q1,
                    q3,
                    n=len(samples),
                    baseline=baseline,
                    extra=extra,
                )
            )
    finally:
        grpc.close()
        http.close()
    stock_bytes = sizes.get(STOCK_EXPLAIN)
    if stock_bytes:
        for r in rows:
            if r.name == STOCK_EXPLAIN:
                r.extra["note"] = (
                    f"the stock answer is {stock_bytes / 2**20:.1f} MiB of JSON floats for "
                    "one 3x224x224 map (ours: 0.6 MiB float32 in protobuf)"
                )
    try:
        rows += compact_answer_rows(running, image, stock_bytes, rows)
    except Exception as exc:  # reported, not fatal to the other rows
        rows.append(
            Measurement(
                "torchserve_stock", SIZE_CASE, COMPACT_LRP, "bytes", float("nan"), extra={"error": repr(exc)}
            )
        )
    return rows


COMPACT_LRP = "ours lrp (gRPC, sum-reduced float16)"
SIZE_CASE = "explanation answer size, resnet18 224x224 B=1"


def compact_answer_rows(
    running: Any, image: bytes, stock_bytes: int | None, rows: list[Measurement]
) -> list[Measurement]:
    """Answer sizes (ours full float32 vs sum-reduced float16 vs the stock JSON), the compact map's
    maximum deviation from the sum-reduced float32 map, and the targets of issue 16 (>= 20x smaller,
    >= 8x faster end to end than the stock explanation)."""
    import numpy as np
    from xai_client.requests import build_request
    from xai_client.results import explanation_from_proto
    from xai_client.values import reduce_channels

    grpc = running.client("grpc")
    try:
        full = grpc.send(servers.OURS, build_request(image, methods=["lrp"]))
        request = build_request(image, methods=["lrp"], reduction="sum", value_type="float16")
        small = grpc.send(servers.OURS, request)
    finally:
        grpc.close()
    full_values = explanation_from_proto(full).heatmaps[0].values
    compact_map = explanation_from_proto(small).heatmaps[0].values
    assert full_values is not None and compact_map is not None  # output form "tensor"
    reference = reduce_channels(full_values, "sum")
    deviation = float(np.abs(compact_map.astype(np.float64) - reference).max())
    peak = float(np.abs(reference).max())
    out = []
    if stock_bytes:
        out.append(Measurement("torchserve_stock", SIZE_CASE, STOCK_EXPLAIN, "bytes", float(stock_bytes)))
    out.append(
        Measurement(
            "torchserve_stock",
            SIZE_CASE,
            "ours lrp (gRPC, float32, 3 channels)",
            "bytes",
            float(full.ByteSize()),
            baseline=STOCK_EXPLAIN if stock_bytes else None,
        )
    )
    ratio = stock_bytes / small.ByteSize() if stock_bytes else None
    out.append(
        Measurement(
            "torchserve_stock",
            SIZE_CASE,
            COMPACT_LRP,
            "bytes",
            float(small.ByteSize()),
            baseline=STOCK_EXPLAIN if stock_bytes else None,
            target=">= 20x smaller",
            met=None if ratio is None else ratio >= 20,
            extra={
                "times_smaller": ratio,
                "max_abs_deviation_vs_reduced_float32": deviation,
                "max_abs_reduced_float32": peak,
                "relative_max_deviation": deviation / peak if peak else 0.0,
            },
        )
    )
    latency = {(r.case, r.name): r for r in rows}
    stock = latency.get(("explain, resnet18 224x224 B=1, sequential", STOCK_EXPLAIN))
    for r in rows:
        compact_row = r.name.endswith("sum-reduced float16)") and r.median == r.median  # not NaN
        if compact_row and stock is not None and stock.median:
            r.target = ">= 8x faster"
            r.met = stock.median / r.median >= 8
            r.extra["times_faster"] = stock.median / r.median
    return out
