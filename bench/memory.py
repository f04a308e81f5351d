"""Memory: peak RSS of one explanation call on ResNet-18 (224×224, random weights) in a fresh process per
case — ours next to Captum, Zennit and pytorch-grad-cam — and of a serving worker (ours and TorchServe's
stock image classifier with Captum IG) while it answers explanations.

In-process rows: ``peak`` is the process's lifetime peak RSS (``VmHWM``: interpreter, imports,
model and the call); ``call`` is that peak minus the RSS just before the call
(what the explanation itself adds). The baseline is a plain no-grad forward pass in the same setting.
Served rows poll the worker process (its PID from the management API) with psutil during the requests.

Run one case by hand: ``python -m bench.memory CASE [BATCH]``; it prints one JSON line.
"""

from __future__ import annotations

import json
import os
import resource
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from bench.common import Measurement, summarise

ROOT = Path(__file__).resolve().parents[1]
SIZE = 224
NUM_CLASSES = 1000
BASELINE = "forward (no_grad)"

# case name -> (needs a torchvision ResNet (peers) or ours, one-call factory)
CASES: dict[str, str] = {
    BASELINE: "forward",
    "fwd+bwd input gradient": "input_gradient",
    "ours gradient": "ours:gradient",
    "ours guided_backprop": "ours:guided_backprop",
    "ours gradcam": "ours:gradcam",
    "ours lrp": "ours:lrp",
    "ours explain(gradient, guided_backprop, gradcam, lrp)": "ours_four",
    "captum IntegratedGradients n_steps=15 (TorchServe stock)": "captum_ig",
    "captum GuidedBackprop": "captum_gbp",
    "captum LayerGradCam": "captum_gradcam",
    "zennit EpsilonPlusFlat + ResNetCanonizer": "zennit_epf",
    "pytorch-grad-cam GradCAM": "gradcam_lib",
}
QUICK_SKIP = {"fwd+bwd input gradient"}


def _rss_mib() -> float:
    with open("/proc/self/statm", encoding="ascii") as fh:
        pages = int(fh.read().split()[1])
    return pages * os.sysconf("SC_PAGE_SIZE") / 2**20


def _peak_mib() -> float:
    """Peak RSS of this process image: ``VmHWM``. (``ru_maxrss`` is not used: Linux carries it over
    ``execve`` from the parent, so a child of a large harness process would report the parent's.)"""
    try:
        with open("/proc/self/status", encoding="ascii") as fh:
            for line in fh:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024  # kB
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux


def _build_call(kind: str, batch: int) -> Callable[[], Any]:
    """Import what ``kind`` needs, build its model and input; return the one call to measure."""
    import torch

    torch.manual_seed(0)
    x = torch.randn(batch, 3, SIZE, SIZE)
    target = [int(i) % NUM_CLASSES for i in range(batch)]
    if kind.startswith("ours:"):
        from xai_serve.explain import create_explainer
        from xai_serve.models import create_model

        model = create_model("resnet18", num_classes=NUM_CLASSES).eval()
        explainer = create_explainer(kind.split(":", 1)[1], model)
        return lambda: explainer(x, target)
    if kind == "ours_four":  # one call, one shared forward pass (issue 14)
        from xai_serve.explain import explain
        from xai_serve.models import create_model

        model = create_model("resnet18", num_classes=NUM_CLASSES).eval()
        methods = {"gradient": {}, "guided_backprop": {}, "gradcam": {"layer": "layer4"}, "lrp": {}}
        return lambda: explain(model, x, methods, target)

    import torchvision

    model = torchvision.models.resnet18(weights=None, num_classes=NUM_CLASSES).eval()
    for m in model.modules():  # torchvision's ReLUs are in-place; the peers' hooks need them not to be
        if isinstance(m, torch.nn.ReLU):
            m.inplace = False
    t = torch.tensor(target)

    if kind == "forward":

        def forward() -> Any:
            with torch.no_grad():
                return model(x)

        return forward
    if kind == "input_gradient":

        def input_gradient() -> Any:
            xi = x.clone().requires_grad_(True)
            out = model(xi).gather(1, t[:, None]).sum()
            return torch.autograd.grad(out, xi)[0]

        return input_gradient
    if kind.startswith("captum"):
        from captum import attr

        if kind == "captum_ig":
            ig = attr.IntegratedGradients(model)
            return lambda: ig.attribute(x, target=t, n_steps=15)
        if kind == "captum_gbp":
            gbp = attr.GuidedBackprop(model)
            return lambda: gbp.attribute(x.clone().requires_grad_(True), target=t)
        lgc = attr.LayerGradCam(model, model.layer4)
        return lambda: lgc.attribute(x, target=t)
    if kind == "zennit_epf":
        from zennit.attribution import Gradient
        from zennit.composites import EpsilonPlusFlat
        from zennit.torchvision import ResNetCanonizer

        composite = EpsilonPlusFlat(canonizers=[ResNetCanonizer()])
        onehot = torch.eye(NUM_CLASSES)[t]

        def zennit_call() -> Any:
            with Gradient(model=model, composite=composite) as attributor:
                return attributor(x, onehot)[1]

        return zennit_call
    if kind == "gradcam_lib":
        from pytorch_grad_cam import GradCAM
        from pytorch_grad_cam.utils.model_targets import ClassifierOutputTarget

        cam = GradCAM(model=model, target_layers=[model.layer4[-1]])
        targets = [ClassifierOutputTarget(i) for i in target]
        return lambda: cam(input_tensor=x, targets=targets)
    raise ValueError(f"unknown memory case {kind!r}")


def measure_case(kind: str, batch: int) -> dict[str, float]:
    """In this process: build, one warm-up-free call, report RSS before and lifetime peak (MiB)."""
    call = _build_call(kind, batch)
    before = _rss_mib()
    call()
    return {"before_mib": before, "peak_mib": _peak_mib(), "after_mib": _rss_mib()}


def _run_child(kind: str, batch: int) -> dict[str, float]:
    proc = subprocess.run(
        [sys.executable, "-m", "bench.memory", kind, str(batch)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=600,
    )
    if proc.returncode != 0:
        lines = (proc.stderr or proc.stdout).strip().splitlines()
        raise RuntimeError(lines[-1] if lines else f"exit {proc.returncode}")
    return dict(json.loads(proc.stdout.strip().splitlines()[-1]))


def error_row(case: str, name: str, error: str) -> Measurement:
    """A row saying this case failed (shown as the error in BENCHMARKS.md)."""
    return Measurement("memory", case, name, "MiB", float("nan"), extra={"error": error})


def in_process_rows(quick: bool) -> list[Measurement]:
    runs = 1 if quick else 3
    batches = [1] if quick else [1, 8]
    rows: list[Measurement] = []
    for batch in batches:
        case = f"resnet18 {SIZE}x{SIZE} B={batch}, fresh process"
        for name, kind in CASES.items():
            if quick and name in QUICK_SKIP:
                continue
            peaks, calls, error = [], [], None
            for _ in range(runs):
                try:
                    r = _run_child(kind, batch)
                except Exception as exc:  # recorded in the table, the other cases still run
                    error = str(exc)
                    break
                peaks.append(r["peak_mib"])
                calls.append(r["peak_mib"] - r["before_mib"])
            if error is not None:
                rows += [error_row(case, f"{name}: {what}", error) for what in ("peak", "call")]
                continue
            for what, samples in (("peak", peaks), ("call", calls)):
                med, q1, q3 = summarise(samples)
                rows.append(
                    Measurement(
                        "memory",
                        case,
                        f"{name}: {what}",
                        "MiB",
                        med,
                        q1,
                        q3,
                        n=len(samples),
                        baseline=None if name == BASELINE else f"{BASELINE}: {what}",
                    )
                )
    return rows


def served_rows(quick: bool) -> list[Measurement]:
    """Peak worker RSS while answering explanations: ours vs the stock handler (bench.servers)."""
    from bench.servers import worker_memory_rows

    return worker_memory_rows(quick)


def run(quick: bool) -> list[Measurement]:
    rows = in_process_rows(quick)
    try:
        rows += served_rows(quick)
    except Exception as exc:
        rows.append(error_row("served resnet18 worker", "worker peak RSS", repr(exc)))
    return rows


if __name__ == "__main__":
    _kind = sys.argv[1]
    _batch = int(sys.argv[2]) if len(sys.argv) > 2 else 1
    _kind = CASES.get(_kind, _kind)
    print(json.dumps(measure_case(_kind, _batch)))
