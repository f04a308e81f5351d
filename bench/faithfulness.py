"""Faithfulness: pixel flipping over the digits test set with every pixel as a step (784 steps,
black baseline, softmax score), ours (batched over images and steps) side by side with Quantus 0.6
``PixelFlipping(features_in_step=1)`` on the same model, images and attributions (input x gradient
from our engine). Throughput in images/s; target >= 5x Quantus.

Models: the default digits checkpoint (runs/digits_simplenet, SimpleNet-310k) when present, else a
SimpleNet-310k with random weights (throughput does not depend on the weights), and an MLP
(784-100-100-10) for which the forward pass is cheap and the perturbation machinery dominates.
``extra.max_abs_diff`` is the largest difference between our curves and Quantus' (agreement check).
Last, the forward-bound figure (issue 14): the seconds of pixel flipping on the digits SimpleNet as a
ratio to the seconds of the forward passes it needs (target <= 1.3x).
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

from bench.common import Measurement, summarise

ROOT = Path(__file__).resolve().parents[1]
CHECKPOINT = ROOT / "runs" / "digits_simplenet"
SUITE = "faithfulness"
QUANTUS = "quantus PixelFlipping"


def _model(name: str) -> tuple[torch.nn.Module, str]:
    from xai_serve.models import create_model, load_checkpoint

    if name == "simplenet_310k" and (CHECKPOINT / "model.json").exists():
        model, _ = load_checkpoint(CHECKPOINT)
        return model.eval(), str(CHECKPOINT.relative_to(ROOT))
    torch.manual_seed(0)
    kwargs: dict[str, Any] = {"input_shape": [1, 28, 28]} if name == "mlp" else {}
    return create_model(name, **kwargs).eval(), f"{name} (random weights)"


def _digits(n: int) -> tuple[torch.Tensor, torch.Tensor]:
    from xai_serve.data import load_dataset

    ds = load_dataset("digits", "test").dataset
    n = min(n, len(ds))  # type: ignore[arg-type]
    x = torch.stack([ds[i][0] for i in range(n)])
    y = torch.tensor([ds[i][1] for i in range(n)])
    return x, y


def _ours(model: torch.nn.Module, x: torch.Tensor, y: torch.Tensor, a: torch.Tensor) -> torch.Tensor:
    from xai_serve.evaluation import make_baseline, perturbation_curves, pixel_steps

    steps, k = pixel_steps(a, "morf", 1)
    return perturbation_curves(
        model, x, y, steps, make_baseline("black", x), k, output="softmax", batch_size=2048
    )


def _quantus(model: torch.nn.Module, x: np.ndarray, y: np.ndarray, a: np.ndarray) -> np.ndarray:
    import quantus

    metric = quantus.PixelFlipping(features_in_step=1, perturb_baseline="black", disable_warnings=True)
    return np.asarray(
        metric(model=model, x_batch=x, y_batch=y, a_batch=a, device="cpu", softmax=True, batch_size=64)
    )


def _case(name: str, n: int, runs: int, quantus_runs: int) -> list[Measurement]:
    from xai_serve.explain import create_explainer

    model, source = _model(name)
    x, y = _digits(n)
    a = create_explainer("input_x_gradient", model)(x, y.tolist()).detach()
    xn, yn, an = x.numpy(), y.numpy(), a.numpy()
    case = f"{source}, {x.shape[0]} digits test images, 784 steps"

    ours_t, quantus_t = [], []
    curves = _ours(model, x[:2], y[:2], a[:2])  # warm-up
    for i in range(max(runs, quantus_runs)):
        if i < runs:
            t0 = time.perf_counter()
            curves = _ours(model, x, y, a)
            ours_t.append(time.perf_counter() - t0)
        if i < quantus_runs:
            t0 = time.perf_counter()
            q = _quantus(model, xn, yn, an)
            quantus_t.append(time.perf_counter() - t0)
    diff = float(np.abs(curves[:, 1:].numpy() - q).max())
    n_img = x.shape[0]
    rows = []
    for label, ts in (("ours pixel flipping (batched)", ours_t), (QUANTUS, quantus_t)):
        med, q1, q3 = summarise([n_img / t for t in ts])
        rows.append(
            Measurement(
                suite=SUITE,
                case=case,
                name=label,
                unit="images/s",
                median=med,
                q1=q1,
                q3=q3,
                n=len(ts),
                baseline=QUANTUS if label != QUANTUS else None,
                target=">= 5x" if label != QUANTUS else None,
                extra={
                    "seconds": ts,
                    "images": n_img,
                    "steps": 784,
                    "forwards": n_img * 785,
                    "max_abs_diff": diff,
                    "threads": torch.get_num_threads(),
                },
            )
        )
    return rows


FORWARDS = "its forward passes alone (same inputs, same chunks)"


def _forward_bound(n_images: int, runs: int) -> list[Measurement]:
    """Pixel flipping as the faithfulness suite runs it (removal order + curves, default forward batch
    2048) on the digits SimpleNet, in seconds, as a ratio to the seconds of the forward passes it needs
    (the same number of inputs through the model in the same chunks, from a preallocated input);
    target <= 1.3x. ``extra`` has the user and system CPU seconds of the curves."""
    import resource

    from xai_serve.evaluation import make_baseline, perturbation_curves, pixel_steps
    from xai_serve.evaluation.perturbation import forward_chunk
    from xai_serve.explain import create_explainer

    model, source = _model("simplenet_310k")
    x, y = _digits(n_images)
    a = create_explainer("input_x_gradient", model)(x, y.tolist()).detach()
    base = make_baseline("black", x)
    chunk = forward_chunk(model, x[:1], 2048)
    total = x.shape[0] * (x.shape[-1] * x.shape[-2] + 1)
    inputs = x[:1].expand(chunk, *x.shape[1:]).clone()

    def suite() -> None:
        steps, k = pixel_steps(a, "morf", 1)
        perturbation_curves(model, x, y, steps, base, k, output="softmax", batch_size=2048)

    @torch.no_grad()
    def forwards() -> None:
        for start in range(0, total, chunk):
            model(inputs[: min(chunk, total - start)])

    times: dict[str, list[float]] = {"suite": [], "forwards": []}
    cpu = {"user": 0.0, "system": 0.0, "forwards": 0.0}
    suite()  # warm-up (and the chunk probe)
    for _ in range(runs):
        for name, fn in (("suite", suite), ("forwards", forwards)):
            r0 = resource.getrusage(resource.RUSAGE_SELF)
            t0 = time.perf_counter()
            fn()
            times[name].append(time.perf_counter() - t0)
            r1 = resource.getrusage(resource.RUSAGE_SELF)
            if name == "suite":
                cpu["user"] += (r1.ru_utime - r0.ru_utime) / runs
                cpu["system"] += (r1.ru_stime - r0.ru_stime) / runs
            else:
                cpu["forwards"] += (r1.ru_utime - r0.ru_utime + r1.ru_stime - r0.ru_stime) / runs
    case = f"pixel flipping, {source}, {x.shape[0]} digits images x 785 inputs"
    extra = {"chunk": chunk, "inputs": total, "threads": torch.get_num_threads()}
    med_f, q1_f, q3_f = summarise(times["forwards"])
    med_s, q1_s, q3_s = summarise(times["suite"])
    return [
        Measurement(SUITE, case, FORWARDS, "s", med_f, q1_f, q3_f, n=runs, extra=extra),
        Measurement(
            SUITE,
            case,
            "ours pixel flipping (ordering + curves)",
            "s",
            med_s,
            q1_s,
            q3_s,
            n=runs,
            baseline=FORWARDS,
            target="<= 1.3x",
            extra={
                **extra,
                "cpu_user_s": cpu["user"],
                "cpu_system_s": cpu["system"],
                "cpu_forwards_s": cpu["forwards"],
                "cpu_ratio": (cpu["user"] + cpu["system"]) / cpu["forwards"] if cpu["forwards"] else None,
                # issue 27: system time (page faults of a trimmed heap) at most 15 % of user time
                "system_over_user": cpu["system"] / cpu["user"] if cpu["user"] else None,
            },
        ),
    ]


def run(quick: bool) -> list[Measurement]:
    """MLP over the whole digits test set (quick: 32 images); full mode adds SimpleNet on 8 images
    (Quantus needs minutes per image batch there on a 2-core machine)."""
    if quick:
        return _case("mlp", 32, 1, 1) + _forward_bound(4, 3)
    return _case("mlp", 359, 3, 1) + _case("simplenet_310k", 8, 2, 1) + _forward_bound(16, 5)


if __name__ == "__main__":  # pragma: no cover
    import argparse
    import json

    p = argparse.ArgumentParser()
    p.add_argument("--quick", action="store_true")
    args = p.parse_args()
    for r in run(args.quick):
        print(json.dumps(r.as_dict()))
