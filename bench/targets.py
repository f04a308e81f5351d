"""Several targets in one pass: explaining the top 5 classes of one image (``explain_targets``: one
forward pass, the K seeds batched in the backward passes) as a ratio to ONE single-target call of the
same method, next to the K single-target calls in sequence (the alternative, about 5x).

Model: torchvision ResNet-18 at 3x224x224 (random weights), batch 1, K = 5, float32, eval mode,
``torch.set_num_threads(2)``. Methods: the input gradient and LRP (its default composite). Timing is
round-robin over the rows of a method (robust to load drift). Target of the issue: <= 2x a single call
(sequential is 5x); on a CPU the K backward passes' arithmetic stays, so the one-pass saving is the
K - 1 forward passes and the batched seeds' better use of the cores.

Run: ``.venv/bin/python -m bench --only targets --no-markdown``.
"""

from __future__ import annotations

import time
from collections.abc import Callable

import torch

from bench.common import Measurement, summarise

SUITE = "targets"
K = 5


def _rows(method: str, rounds: int) -> list[Measurement]:
    import torchvision

    from xai_serve.explain import create_explainer, explain_targets

    torch.manual_seed(0)
    model = torchvision.models.resnet18(weights=None).eval()
    x = torch.randn(1, 3, 224, 224, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        top = model(x)[0].topk(K).indices.tolist()
    explainer = create_explainer(method, model)
    single_name = f"{method}: one single-target call"
    fns: dict[str, Callable[[], object]] = {
        single_name: lambda: explainer(x, [top[0]]),
        f"{method}: top{K} in one pass (explain_targets)": lambda: explain_targets(model, x, [method], [top]),
        f"{method}: top{K} as {K} single-target calls": lambda: [explainer(x, [c]) for c in top],
    }
    for fn in fns.values():
        fn()  # warm-up
    samples: dict[str, list[float]] = {name: [] for name in fns}
    for _ in range(rounds):
        for name, fn in fns.items():
            t0 = time.perf_counter()
            fn()
            samples[name].append(time.perf_counter() - t0)
    rows = []
    case = f"resnet18 224x224 B=1 K={K}"
    for name, values in samples.items():
        median, q1, q3 = summarise(values, scale=1000.0)
        one_pass = "one pass" in name
        rows.append(
            Measurement(
                suite=SUITE,
                case=case,
                name=name,
                unit="ms",
                median=median,
                q1=q1,
                q3=q3,
                n=rounds,
                baseline=None if name == single_name else single_name,
                target="<= 2x" if one_pass else None,
            )
        )
    return rows


def run(quick: bool = True) -> list[Measurement]:
    torch.set_num_threads(2)
    rounds = 3 if quick else 10
    return [row for method in ("gradient", "lrp") for row in _rows(method, rounds)]


def main(quick: bool = True) -> None:
    from bench.common import add_ratios

    for r in add_ratios(run(quick)):
        ratio = "" if r.ratio is None else f"{r.ratio:5.2f}x"
        print(f"{r.case:26s} {r.name:52s} {r.median:9.1f} ms {ratio}")
