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
    ]
    rows = []
    try:
        for case, name, baseline, call in plans:
            try:
                samples = time_call(call, warmup=warmup, runs=runs)
            except Exception as exc:  # one failing case is reported, the others still run
                rows.append(Measurement("torchserve_stock", case, name, "ms", float("nan"),
                                        baseline=baseline, extra={"error": repr(exc)}))
                continue
            med, q1, q3 = summarise(samples, 1000.0)
            extra = {"response_bytes": sizes[name]} if name in sizes else {}
            rows.append(Measurement("torchserve_stock", case, name, "ms", med, q1, q3, n=len(samples),
                                    baseline=baseline, extra=extra))
    finally:
        grpc.close()
        http.close()
    stock_bytes = sizes.get(STOCK_EXPLAIN)
    if stock_bytes:
        for r in rows:
            if r.name == STOCK_EXPLAIN:
                r.extra["note"] = (f"the stock answer is {stock_bytes / 2**20:.1f} MiB of JSON floats for "
                                   "one 3x224x224 map (ours: 0.6 MiB float32 in protobuf)")
    return rows
