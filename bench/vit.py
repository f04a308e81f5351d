"""Vision transformer LRP: AttnLRP on torchvision's ViT-B/16 at 224×224 (random weights, head
re-initialised), B=1 and B=8, against one forward+backward input gradient and LXT (the authors'
implementation, AttnLRP built from its own patches on torchvision's ViT) in the same run.

Each case runs in a fresh process (LXT's patches replace ``forward`` on torch classes for the whole
process, and a fresh process gives a clean memory figure): time is the median of the timed calls after
one warm-up; ``call MiB`` is the peak RSS the first call adds over the RSS just before it (AttnLRP's
target: within 1.3× of the input gradient's).

Run one case by hand: ``python -m bench.vit CASE BATCH``; it prints one JSON line.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any

from bench.common import Measurement, summarise
from bench.memory import _peak_mib, _rss_mib

ROOT = Path(__file__).resolve().parents[1]
BASELINE = "fwd+bwd input gradient"
CASES = {
    BASELINE: "input_gradient",
    "ours lrp attnlrp": "ours_attnlrp",
    "LXT AttnLRP (efficient)": "lxt_attnlrp",
}
TARGETS = {"ours lrp attnlrp": "<= 1.5x"}  # and faster than LXT (same case)


def _model() -> Any:
    import torch
    import torchvision

    torch.manual_seed(0)
    model = torchvision.models.vit_b_16(weights=None).eval()
    torch.nn.init.normal_(model.heads.head.weight, std=0.02)
    return model


def _build_call(kind: str, batch: int) -> Callable[[], Any]:
    import torch

    model = _model()
    x = torch.randn(batch, 3, 224, 224, generator=torch.Generator().manual_seed(1))
    target = [i % 1000 for i in range(batch)]
    t = torch.tensor(target)
    if kind == "ours_attnlrp":
        from xai_serve.explain import create_explainer

        explainer = create_explainer("lrp", model, composite="attnlrp")
        return lambda: explainer(x, target)
    if kind == "lxt_attnlrp":
        import torchvision.models.vision_transformer as vision_transformer
        from lxt.efficient import monkey_patch
        from lxt.efficient import patches as lxt_patches
        from lxt.efficient.rules import divide_gradient

        def mha_forward(self: Any, query: Any, key: Any, value: Any, *args: Any, **kwargs: Any) -> Any:
            q, k, v = divide_gradient(query, 4), divide_gradient(key, 4), divide_gradient(value, 2)
            return self.original_forward(q, k, v, *args, **kwargs)

        patch = partial(lxt_patches.patch_method, keep_original=True)
        monkey_patch(
            vision_transformer,
            patch_map={
                torch.nn.GELU: partial(patch, lxt_patches.non_linear_forward),
                torch.nn.LayerNorm: partial(lxt_patches.patch_method, lxt_patches.layer_norm_forward),
                torch.nn.MultiheadAttention: partial(patch, mha_forward),
            },
        )
        for p in model.parameters():
            p.requires_grad_(False)

    def input_times_gradient() -> Any:  # the plain gradient, or LXT's modified one once patched
        xi = x.clone().requires_grad_(True)
        out = model(xi).gather(1, t[:, None]).sum()
        (g,) = torch.autograd.grad(out, xi)
        return xi.detach() * g

    return input_times_gradient


def measure_case(kind: str, batch: int, runs: int) -> dict[str, Any]:
    call = _build_call(kind, batch)
    before = _rss_mib()
    call()
    added = _peak_mib() - before
    samples = []
    for _ in range(runs):
        t0 = time.perf_counter()
        call()
        samples.append(time.perf_counter() - t0)
    return {"samples": samples, "call_mib": added}


def run(quick: bool) -> list[Measurement]:
    rows: list[Measurement] = []
    runs = 3 if quick else 7
    for batch in (1, 8):
        case = f"vit_b_16 224x224 B={batch}"
        for name, kind in CASES.items():
            proc = subprocess.run(
                [sys.executable, "-m", "bench.vit", kind, str(batch), str(runs)],
                cwd=ROOT,
                capture_output=True,
                text=True,
                timeout=1800,
            )
            if proc.returncode != 0:
                error = proc.stderr.strip().splitlines()[-1:] or ["failed"]
                rows.append(Measurement("vit", case, name, "ms", float("nan"), extra={"error": error[0]}))
                continue
            data = json.loads(proc.stdout.strip().splitlines()[-1])
            med, q1, q3 = summarise(data["samples"], 1000.0)
            baseline = None if name == BASELINE else BASELINE
            rows.append(
                Measurement(
                    "vit", case, name, "ms", med, q1, q3, runs, baseline=baseline, target=TARGETS.get(name)
                )
            )
            rows.append(
                Measurement(
                    "vit",
                    case,
                    f"{name} call MiB",
                    "MiB",
                    data["call_mib"],
                    baseline=None if name == BASELINE else f"{BASELINE} call MiB",
                    target="<= 1.3x" if name == "ours lrp attnlrp" else None,
                )
            )
    return rows


if __name__ == "__main__":
    print(
        json.dumps(measure_case(sys.argv[1], int(sys.argv[2]), int(sys.argv[3]) if len(sys.argv) > 3 else 3))
    )
