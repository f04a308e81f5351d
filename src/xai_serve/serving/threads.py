"""How many torch threads a serving worker runs: by the model's cost per image.

TorchServe's Java frontend shares the machine's cores with the worker. For a light model (a digits
SimpleNet: a few million multiply-adds per image) the frontend's work per request is of the same
order as the model's, so the worker leaves it one core: a second OpenMP thread made 16 clients
*slower* on 2 cores (bench/where_time_goes.md). For a heavy model (a ResNet-18 at 224x224: 1.8
billion multiply-adds) the model's work dwarfs the frontend's and one thread doubles every request's
latency (LRP 410 ms at one thread against 262 ms at two on 2 cores), so the worker uses every core.
The dividing line, :data:`HEAVY_MACS`, is 200 million multiply-adds per image: from there a forward
pass takes more than about 10 ms on one core, several times the frontend's CPU per request.
An archive's ``torch_threads`` overrides the policy.
"""

from __future__ import annotations

import math
import os

import torch
from torch import nn

HEAVY_MACS = 200e6


def cores() -> int:
    """Cores this process may run on."""
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return os.cpu_count() or 1


def forward_macs(model: nn.Module, input_shape: list[int] | tuple[int, ...]) -> int:
    """Multiply-adds of the convolutions, linear layers and attention modules in one forward pass of one
    image (a probe pass on zeros; other layers are negligible next to them). ``nn.MultiheadAttention``
    calls no submodule (its ``out_proj`` is read, not called): its projections and its two products
    (scores and values) are counted from its inputs."""
    total = [0]

    def hook(module: nn.Module, inputs: tuple[torch.Tensor, ...], output: torch.Tensor) -> None:
        if isinstance(module, nn.MultiheadAttention):  # returns (output, weights)
            total[0] += _attention_macs(module, inputs)
            return
        if not isinstance(output, torch.Tensor):
            return
        if isinstance(module, nn.Linear):
            total[0] += output.numel() * module.in_features
        elif isinstance(module, nn.ConvTranspose1d | nn.ConvTranspose2d | nn.ConvTranspose3d):
            per_input = module.out_channels // module.groups * math.prod(module.kernel_size)
            total[0] += inputs[0].numel() * per_input
        elif isinstance(module, nn.Conv1d | nn.Conv2d | nn.Conv3d):
            total[0] += output.numel() * (module.in_channels // module.groups) * math.prod(module.kernel_size)

    kinds = (
        nn.Linear,
        nn.Conv1d,
        nn.Conv2d,
        nn.Conv3d,
        nn.ConvTranspose1d,
        nn.ConvTranspose2d,
        nn.ConvTranspose3d,
    )
    handles = [m.register_forward_hook(hook) for m in model.modules() if isinstance(m, kinds)]
    handles += [
        m.register_forward_hook(hook) for m in model.modules() if isinstance(m, nn.MultiheadAttention)
    ]
    try:
        param = next(model.parameters(), None)
        dtype = param.dtype if param is not None else torch.float32
        with torch.no_grad():
            model(torch.zeros(1, *input_shape, dtype=dtype))
    finally:
        for handle in handles:
            handle.remove()
    return total[0]


def _attention_macs(mha: nn.MultiheadAttention, inputs: tuple[torch.Tensor, ...]) -> int:
    """Multiply-adds of one ``nn.MultiheadAttention`` call: q/k/v and output projections, scores, values."""
    query, key = inputs[0], inputs[1]
    seq = 1 if mha.batch_first and query.dim() == 3 else 0
    tgt, src = query.shape[seq], key.shape[seq]
    batch = query.numel() // (tgt * mha.embed_dim)
    dim, kdim, vdim = mha.embed_dim, mha.kdim, mha.vdim
    projections = tgt * dim * dim + src * dim * (kdim + vdim) + tgt * dim * dim
    return batch * (projections + 2 * tgt * src * dim)


def worker_threads(macs: float | None = None) -> int:
    """Intra-op threads for a worker whose model costs ``macs`` multiply-adds per image: every core for
    a heavy model (``>= HEAVY_MACS``), every core but one, left to the frontend, otherwise (and when the
    cost is unknown)."""
    n = cores()
    if macs is not None and macs >= HEAVY_MACS:
        return n
    return max(1, n - 1)
