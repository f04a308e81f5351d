"""Batched evaluation of perturbation curves (pixel flipping, region perturbation).

Given removal-step maps (``ordering.py``), the curve of image b is
``curve[b, k] = score(model(where(steps_b <= k, baseline_b, x_b)))[target_b]`` for k = 0..K_b
(k = 0 is the unperturbed image). All (image, step) pairs are flattened and evaluated in
chunks of at most ``batch_size`` inputs, so a 784-step curve over a batch of images costs
``ceil(B * 785 / chunk)`` forward passes instead of 784 * B.

Chunks are sized from memory (:func:`forward_chunk`): at most ``batch_size`` inputs, and few enough that
the largest activation of one forward pass stays within :data:`ACTIVATION_BUDGET` bytes. Larger chunks
do not make a CPU forward pass cheaper per input, but their activations exceed the allocator's reuse
threshold, so every pass maps and faults in fresh pages (system time that exceeded the user time of the
forward passes themselves). The perturbed inputs are written into one reused buffer, and the process
keeps the heap memory a pass frees for the next pass (:func:`~xai_serve.evaluation.heap.keep_freed_memory`:
glibc would otherwise return it to the system after every pass and fault it in again).
"""

from __future__ import annotations

import weakref
from collections.abc import Callable

import torch
from torch import nn

from xai_serve.errors import InvalidParameterError
from xai_serve.evaluation.heap import keep_freed_memory
from xai_serve.evaluation.ordering import pixel_steps, region_steps

Model = Callable[[torch.Tensor], torch.Tensor]
OUTPUTS = ("softmax", "logit")
# bytes of the largest activation of one pass (glibc's heap reuses blocks below 32 MiB instead of mmap)
ACTIVATION_BUDGET = 32 * 2**20
_CHUNKS: weakref.WeakKeyDictionary[nn.Module, dict[tuple[int, ...], int]] = weakref.WeakKeyDictionary()


def forward_chunk(model: Model, sample: torch.Tensor, limit: int, budget: int = ACTIVATION_BUDGET) -> int:
    """Inputs per forward pass for inputs like ``sample`` (one input, batch dim included): at most
    ``limit``, and ``budget // (largest per-input activation in bytes)`` (measured once per model and
    input shape by one probe pass with forward hooks; ``limit`` for a model that is not an nn.Module)."""
    if not isinstance(model, nn.Module):
        return max(1, limit)
    key = (*sample.shape[1:], budget)
    known = _CHUNKS.setdefault(model, {})
    if key not in known:
        sizes = [sample[:1].numel() * sample.element_size()]

        def hook(module: nn.Module, inputs: object, output: object) -> None:
            if isinstance(output, torch.Tensor):
                sizes.append(output.numel() * output.element_size())

        handles = [m.register_forward_hook(hook) for m in model.modules() if next(m.children(), None) is None]
        try:
            with torch.no_grad():
                model(sample[:1])
        finally:
            for h in handles:
                h.remove()
        known[key] = max(1, budget // max(sizes))
    return max(1, min(limit, known[key]))


def class_scores(logits: torch.Tensor, target: torch.Tensor, output: str) -> torch.Tensor:
    """The score of ``target`` per row: softmax probability or raw logit."""
    if output == "softmax":
        logits = torch.softmax(logits, dim=1)
    elif output != "logit":
        raise InvalidParameterError(f"output must be one of {', '.join(OUTPUTS)}; got {output!r}")
    return logits.gather(1, target.view(-1, 1).to(logits.device)).squeeze(1)


@torch.no_grad()
def perturbation_curves(
    model: Model,
    x: torch.Tensor,
    target: torch.Tensor,
    steps: torch.Tensor,
    baseline: torch.Tensor,
    n_steps: torch.Tensor | int,
    *,
    output: str = "softmax",
    batch_size: int = 1024,
    on_chunk: Callable[[int], None] | None = None,
) -> torch.Tensor:
    """Curves (B, max K + 1) in float64; entries past an image's own ``n_steps`` are NaN.

    ``steps`` broadcasts against ``x`` (e.g. (B, 1, H, W) for whole pixels of a C-channel image);
    ``on_chunk(n)`` is called after each forward with the number of inputs evaluated.
    """
    b = x.shape[0]
    k_per = torch.as_tensor(n_steps, dtype=torch.long).expand(b).cpu() if b else torch.zeros(0)
    k_max = int(k_per.max()) if b else 0
    curves = torch.full((b, k_max + 1), float("nan"), dtype=torch.float64)
    if b == 0:
        return curves
    keep_freed_memory()
    img = torch.repeat_interleave(torch.arange(b), k_per + 1)
    step = torch.cat([torch.arange(int(k) + 1) for k in k_per])
    device = x.device
    target = target.to(device)
    # compact removal steps (int16 when they fit) make the per-input comparison cheaper
    small = torch.int16 if int(steps.max()) < 2**15 else torch.int32
    steps = steps.to(device=device, dtype=small)
    shape = (-1, *([1] * (x.dim() - 1)))
    batch_size = forward_chunk(model, x[:1], batch_size)
    buf = torch.empty((min(batch_size, img.numel()), *x.shape[1:]), dtype=x.dtype, device=device)
    for start in range(0, img.numel(), batch_size):
        bi = img[start : start + batch_size]
        ki = step[start : start + batch_size]
        n = bi.numel()
        # the pairs are image-major: build each image's run of steps by broadcasting (no gathers)
        bounds = torch.nonzero(bi[1:] != bi[:-1]).flatten().add(1).tolist()
        for s0, s1 in zip([0, *bounds], [*bounds, n], strict=True):
            j = int(bi[s0])
            ks = ki[s0:s1].to(device=device, dtype=small).view(shape)
            torch.where(steps[j] <= ks, baseline[j], x[j], out=buf[s0:s1])
        s = class_scores(model(buf[:n]), target[bi.to(device)], output)
        curves[bi, ki] = s.to("cpu", torch.float64)
        if on_chunk is not None:
            on_chunk(n)
    return curves


def pixel_flipping(
    model: Model,
    x: torch.Tensor,
    target: torch.Tensor,
    attribution: torch.Tensor,
    baseline: torch.Tensor,
    *,
    order: str = "morf",
    features_in_step: int = 1,
    output: str = "softmax",
    batch_size: int = 1024,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """Pixel-flipping curves (B, K + 1): cumulative removal of ``features_in_step`` features per step.

    ``attribution`` is shaped like ``x`` (each element a feature) or (B, 1, H, W) (whole pixels).
    """
    steps, k = pixel_steps(attribution, order, features_in_step, generator)
    return perturbation_curves(model, x, target, steps, baseline, k, output=output, batch_size=batch_size)


def region_perturbation(
    model: Model,
    x: torch.Tensor,
    target: torch.Tensor,
    attribution: torch.Tensor,
    baseline: torch.Tensor,
    *,
    order: str = "morf",
    patch_size: int = 4,
    max_regions: int | None = None,
    output: str = "softmax",
    batch_size: int = 1024,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """Region-perturbation curves (B, K + 1): one ``patch_size`` tile removed per step."""
    steps, k = region_steps(attribution, order, patch_size, max_regions, generator)
    return perturbation_curves(model, x, target, steps, baseline, k, output=output, batch_size=batch_size)
