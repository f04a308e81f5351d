"""Explanation-engine benchmark: each method as a ratio to one forward+backward input gradient.

Models: torchvision ResNet-18 at 3x224x224 (random weights, in-place ReLUs, ``out += identity``) and
SimpleNet-310k at 1x28x28; batch 1 and 16; ``torch.set_num_threads(2)``; float32, eval mode. The
baseline is ``torch.autograd.grad(model(x)[target].sum(), x)``. Peers are measured in the same run:
Captum (Saliency, GuidedBackprop, LayerGradCam + upsampling, LRP), Zennit (EpsilonPlusFlat,
EpsilonGammaBox, Epsilon with their canonisers; composite registered once outside the timing, i.e. its
best case) and pytorch-grad-cam (GradCAM). Our explainers are built once (as a serving worker would)
and every call registers and removes its own patches.

Run: ``.venv/bin/python -m bench --only engine [--quick]`` or
``.venv/bin/python -c 'import bench.engine as e; e.main(quick=True)'``.
Timing is round-robin over all rows of a case (robust to load drift on a shared machine).
Quick mode: no ResNet-18 batch 16 and fewer rounds.
"""

from __future__ import annotations

import copy
import math
import time
from collections.abc import Callable
from typing import Any

import torch
from torch import nn

from bench.common import Measurement, add_ratios, summarise, time_call

BASELINE = "fwd+bwd input gradient (baseline)"
SUITE = "engine"


def _models() -> dict[str, tuple[nn.Module, tuple[int, ...], str]]:
    import torchvision

    from xai_serve.models import create_model

    torch.manual_seed(0)
    resnet = torchvision.models.resnet18(weights=None).eval()
    simplenet = create_model("simplenet_310k").eval()
    return {
        "resnet18 224x224": (resnet, (3, 224, 224), "layer4"),
        "simplenet 28x28": (simplenet, (1, 28, 28), "features.48"),
    }


def _baseline(model: nn.Module, x: torch.Tensor, t: torch.Tensor) -> Callable[[], object]:
    def run() -> object:
        xr = x.detach().requires_grad_(True)
        return torch.autograd.grad(model(xr).gather(1, t[:, None]).sum(), xr)[0]

    return run


def _ours(
    model: nn.Module, x: torch.Tensor, t: torch.Tensor, layer: str
) -> dict[str, tuple[Callable[[], object], str]]:
    from xai_serve.explain import ModelContext, create_explainer, explain

    def one(name: str, context: ModelContext | None = None, **params: Any) -> Callable[[], object]:
        explainer = create_explainer(name, model, context=context, **params)
        return lambda: explainer(x, t)

    four = {"gradient": {}, "guided_backprop": {}, "gradcam": {"layer": layer}, "lrp": {}}
    return {
        "ours gradient": (one("gradient"), "<= 1.1x"),
        "ours input_x_gradient": (one("input_x_gradient"), "<= 1.1x"),
        "ours guided_backprop": (one("guided_backprop"), "<= 1.1x"),
        "ours deconvnet": (one("deconvnet"), "<= 1.1x"),
        "ours gradcam": (one("gradcam", layer=layer), "<= captum LayerGradCam"),
        "ours lrp epsilon": (one("lrp", composite="epsilon"), "<= 1.3x, < zennit & captum"),
        "ours lrp epsilon_plus_flat": (
            one("lrp", composite="epsilon_plus_flat"),
            "<= 1.4x, < zennit & captum",
        ),
        "ours lrp epsilon_gamma_box": (
            one("lrp", ModelContext((0.45,), (0.25,)), composite="epsilon_gamma_box"),
            "<= 1.8x, < zennit & captum",
        ),
        "ours explain(gradient, guided_backprop, gradcam, lrp)": (
            lambda: explain(model, x, four, t),
            "<= 2.3x",
        ),
    }


def _peers(model: nn.Module, x: torch.Tensor, t: torch.Tensor, layer: str) -> dict[str, Callable[[], object]]:
    import torch.nn.functional as F
    from captum.attr import LRP, GuidedBackprop, LayerGradCam, Saliency
    from captum.attr._utils.lrp_rules import EpsilonRule, IdentityRule
    from pytorch_grad_cam import GradCAM
    from pytorch_grad_cam.utils.model_targets import ClassifierOutputTarget
    from zennit.canonizers import SequentialMergeBatchNorm
    from zennit.composites import EpsilonGammaBox, EpsilonPlusFlat, LayerMapComposite, layer_map_base
    from zennit.rules import Epsilon
    from zennit.torchvision import ResNetCanonizer
    from zennit.types import Linear

    # Captum's backward hooks reject in-place ReLUs: give it (and Zennit) an out-of-place copy
    peer = copy.deepcopy(model)
    for m in peer.modules():
        if isinstance(getattr(m, "inplace", None), bool):
            m.inplace = False
    # Captum's LRP has no default rule for Dropout2d / Flatten / AdaptiveMaxPool2d: give it ones
    for m in peer.modules():
        if isinstance(m, nn.Dropout2d):
            m.rule = IdentityRule()  # type: ignore[assignment]
        elif isinstance(m, nn.Flatten | nn.AdaptiveMaxPool2d):
            m.rule = EpsilonRule()  # type: ignore[assignment]
    target_layer = peer.get_submodule(layer)
    size = tuple(x.shape[2:])
    out: dict[str, Callable[[], object]] = {
        "captum Saliency": lambda: Saliency(peer).attribute(x.clone().requires_grad_(), target=t, abs=False),
        "captum GuidedBackprop": lambda: GuidedBackprop(peer).attribute(x.clone().requires_grad_(), target=t),
        "captum LayerGradCam (+relu, upsample)": lambda: F.interpolate(
            LayerGradCam(peer, target_layer).attribute(x, target=t, relu_attributions=True),
            size=size,
            mode="bilinear",
        ),
        "captum LRP": lambda: LRP(peer).attribute(x.clone().requires_grad_(), target=t),
    }
    cam = GradCAM(model=peer, target_layers=[target_layer])
    targets = [ClassifierOutputTarget(int(c)) for c in t]
    out["pytorch-grad-cam GradCAM"] = lambda: cam(input_tensor=x, targets=targets)
    canon = ResNetCanonizer if "resnet" in type(model).__name__.lower() else SequentialMergeBatchNorm
    onehot = torch.zeros(x.shape[0], 1000 if canon is ResNetCanonizer else 10).scatter_(1, t[:, None], 1.0)
    composites = {
        "zennit EpsilonPlusFlat": lambda: EpsilonPlusFlat(canonizers=[canon()]),
        "zennit EpsilonGammaBox": lambda: EpsilonGammaBox(low=-1.8, high=2.2, canonizers=[canon()]),
        "zennit Epsilon": lambda: LayerMapComposite(
            layer_map=[*layer_map_base(), (Linear, Epsilon())], canonizers=[canon()]
        ),
    }
    for name, make in composites.items():
        out[name] = _zennit_call(peer, make, x, onehot)
    return out


def _zennit_call(
    model: nn.Module, make: Callable[[], Any], x: torch.Tensor, onehot: torch.Tensor
) -> Callable[[], object]:
    from zennit.attribution import Gradient

    def run() -> object:
        with Gradient(model=model, composite=make()) as attributor:
            return attributor(x, lambda out: onehot * out)[1]

    return run


def _interleaved(
    case: str, fns: dict[str, tuple[Callable[[], object], str | None]], rounds: int, warmup: int
) -> list[Measurement]:
    """Time every callable once per round, round-robin, so that load drifts on a shared machine hit all
    rows alike; a callable that raises is recorded with its error and dropped."""
    live: dict[str, tuple[Callable[[], object], str | None]] = {}
    rows: list[Measurement] = []
    for name, (fn, target) in fns.items():
        try:
            time_call(fn, warmup=0, runs=warmup)
            live[name] = (fn, target)
        except Exception as exc:  # a peer failing is a finding, not a benchmark crash
            rows.append(Measurement(SUITE, case, name, "ms", float("nan"), extra={"error": repr(exc)[:300]}))
    samples: dict[str, list[float]] = {name: [] for name in live}
    for _ in range(rounds):
        for name, (fn, _target) in live.items():
            t0 = time.perf_counter()
            fn()
            samples[name].append(time.perf_counter() - t0)
    for name, (_fn, target) in live.items():
        median, q1, q3 = summarise(samples[name], scale=1000.0)
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
                baseline=None if name == BASELINE else BASELINE,
                target=target,
            )
        )
    return rows


def _judge(rows: list[Measurement]) -> None:
    by_case: dict[str, dict[str, Measurement]] = {}
    for r in rows:
        by_case.setdefault(r.case, {})[r.name] = r
    for r in rows:
        if r.target is None or r.ratio is None:
            continue
        peers = by_case[r.case]
        ok = True
        why: list[str] = []
        if r.target.startswith("<="):
            bound = r.target[2:].split("x")[0].strip()
            if bound.replace(".", "").isdigit():
                ok = r.ratio <= float(bound)
                why.append(f"ratio {r.ratio:.2f}× to {BASELINE} {'meets' if ok else 'misses'} <= {bound}x")
            else:  # "<= captum LayerGradCam"
                name = "captum LayerGradCam (+relu, upsample)"
                other = peers.get(name)
                ok = other is not None and r.median <= other.median
                why.append(
                    f"{name} not measured"
                    if other is None
                    else f"{r.median:.1f} ms vs {name} {other.median:.1f} ms ({r.median / other.median:.2f}×)"
                )
        if "< zennit & captum" in r.target:
            names = [
                n
                for n in peers
                if (n.startswith("zennit") or n == "captum LRP") and not math.isnan(peers[n].median)
            ]
            faster = all(r.median < peers[n].median for n in names)
            ok = ok and faster
            shown = ", ".join(f"{n} {peers[n].median:.1f} ms" for n in names) or "no peer measured"
            why.append(f"{r.median:.1f} ms {'below' if faster else 'not below'} {shown}")
        r.met = ok
        r.extra["reason"] = "; ".join(why)


def run(quick: bool) -> list[Measurement]:
    torch.set_num_threads(2)
    rows: list[Measurement] = []
    for model_name, (model, shape, layer) in _models().items():
        for batch in (1, 16):
            if quick and batch == 16 and "resnet" in model_name:
                continue
            case = f"{model_name} B={batch}"
            gen = torch.Generator().manual_seed(batch)
            x = torch.randn(batch, *shape, generator=gen)
            t = torch.arange(batch) % 10
            small = "simplenet" in model_name
            rounds = (9 if small else 5) if quick else (21 if small else 7)
            fns: dict[str, tuple[Callable[[], object], str | None]] = {
                BASELINE: (_baseline(model, x, t), None)
            }
            fns.update(_ours(model, x, t, layer))
            fns.update({name: (fn, None) for name, fn in _peers(model, x, t, layer).items()})
            rows += _interleaved(case, fns, rounds, warmup=1 if quick else 2)
    add_ratios(rows)
    _judge(rows)
    return rows


def main(quick: bool = True) -> list[Measurement]:
    """Run and print a table (for a quick look without the harness)."""
    t0 = time.perf_counter()
    rows = run(quick)
    for r in rows:
        ratio = "" if r.ratio is None else f"{r.ratio:6.2f}x"
        met = "" if r.met is None else ("met" if r.met else "MISSED")
        error = r.extra.get("error", "")
        print(f"{r.case:24s} {r.name:58s} {r.median:9.2f} ms {ratio:8s} {r.target or '':28s} {met} {error}")
    print(f"took {time.perf_counter() - t0:.0f} s")
    return rows
