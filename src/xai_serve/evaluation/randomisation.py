"""Model-parameter randomisation for sanity checks (Adebayo et al. 2018; docs/methods.md#randomisation).

A *schedule* lists the layers to randomise, top-down (output first). Two modes:

- ``cascading``: level l randomises layers 1..l of the schedule (cumulative),
- ``independent``: level l randomises only layer l, the others keep their trained values.

Three variants:

- ``standard``: every module owning parameters is one level; it is re-initialised with its own
  ``reset_parameters()`` (the layer's initialiser, as Quantus' MPRT) under a seeded RNG, or,
  without one, its parameters are drawn from N(0, std of the trained tensor).
- ``pattern_theory``: the General Pattern Theory code's levels and noise: level 1 = the classifier's weight <-
  N(0, 1); then, for a ResNet, ``layer4`` .. ``layer1`` (every block's conv/bn weights and biases, not the
  downsample branches, not the stem) <- 0.1 * N(0, 1); for other models every remaining parameter module
  top-down except the first (the stem), with the same 0.1 * N(0, 1). BN running statistics are
  never touched.
- ``components``: the component-wise cascade of a model with component outputs (General Pattern
  Theory, Tjoa & Guan): the levels the model declares (``component_levels()``, see
  :mod:`xai_serve.models.randomisation_levels`), run by :mod:`xai_serve.evaluation.component_randomisation`.

Randomisation is deterministic in (seed, level) and works in place; ``restored(model)`` keeps one
snapshot of the state and puts it back afterwards (no per-layer deep copies of the model).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager

import numpy as np
import torch
from torch import nn

from xai_serve.errors import InvalidParameterError
from xai_serve.evaluation.similarity import compare_maps
from xai_serve.models.randomisation_levels import RandomisationLevel, component_levels

MODES = ("cascading", "independent")
VARIANTS = ("standard", "pattern_theory", "components")


def _own_params(module: nn.Module) -> list[str]:
    return [n for n, _ in module.named_parameters(recurse=False)]


def _standard(model: nn.Module) -> list[RandomisationLevel]:
    layers = []
    for name, module in model.named_modules():
        own = _own_params(module)
        if own:
            qual = tuple(f"{name}.{p}" if name else p for p in own)
            layers.append(RandomisationLevel(name or type(module).__name__, qual, (name,), "reinit"))
    return layers[::-1]


def _pattern_theory_levels(model: nn.Module) -> list[RandomisationLevel]:
    linears = [n for n, m in model.named_modules() if isinstance(m, nn.Linear)]
    if not linears:  # the General Pattern Theory ResGPTNet: a 1x1 conv classifier named fc (possibly nested)
        linears = [n for n, m in model.named_modules() if n.split(".")[-1] == "fc" and _own_params(m)]
    if not linears:
        raise InvalidParameterError(
            "the pattern_theory schedule needs a final nn.Linear (or 'fc') classifier"
        )
    fc = linears[-1]
    levels = [RandomisationLevel(fc, (f"{fc}.weight",), (), "normal", 1.0)]
    stages = [n for n, _ in model.named_modules() if re.fullmatch(r"layer\d+", n.split(".")[-1])]
    depth = min((n.count(".") for n in stages), default=0)  # the ResNet stages (ResGPTNet: backbone.*)
    groups = sorted(
        (n for n in stages if n.count(".") == depth),
        key=lambda n: int(n.split(".")[-1][5:]),
        reverse=True,
    )
    if groups:
        for g in groups:
            params = tuple(
                n
                for n, _ in model.named_parameters()
                if n.startswith(g + ".") and ".downsample." not in n and ".shortcut." not in n
            )
            levels.append(RandomisationLevel(g, params, (), "normal", 0.1))
        return levels
    modules = [(n, m) for n, m in model.named_modules() if _own_params(m) and n != fc]
    for name, module in modules[:0:-1]:  # top-down, the first (stem) excluded
        levels.append(
            RandomisationLevel(name, tuple(f"{name}.{p}" for p in _own_params(module)), (), "normal", 0.1)
        )
    return levels


def schedule(model: nn.Module, variant: str = "standard") -> list[RandomisationLevel]:
    """The randomisation levels of ``model``, top-down."""
    if variant == "standard":
        return _standard(model)
    if variant == "pattern_theory":
        return _pattern_theory_levels(model)
    if variant == "components":
        return component_levels(model)
    raise InvalidParameterError(f"variant must be one of {', '.join(VARIANTS)}; got {variant!r}")


@torch.no_grad()
def randomise(model: nn.Module, layer: RandomisationLevel, seed: int) -> None:
    """Randomise ``layer`` of ``model`` in place, deterministically in ``seed``."""
    params = dict(model.named_parameters())
    modules = dict(model.named_modules())
    if layer.noise == "reinit":
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            for name in layer.modules:
                module = modules[name]
                reset = getattr(module, "reset_parameters", None)
                if callable(reset):
                    reset()
                else:
                    for p in module.parameters(recurse=False):
                        std = float(p.std()) if p.numel() > 1 else 1.0
                        p.copy_(torch.randn(p.shape, dtype=p.dtype) * std)
        return
    g = torch.Generator().manual_seed(seed)
    for name in layer.params:
        p = params[name]
        if layer.noise == "max_uniform":  # w <- max(w) * U(-1, 1) * scale (Tjoa & Guan's component check)
            u = torch.rand(p.shape, generator=g, dtype=torch.float64) * 2 - 1
            p.copy_((float(p.max()) * u * layer.scale).to(p))
        else:
            p.copy_((torch.randn(p.shape, generator=g, dtype=torch.float64) * layer.scale).to(p))


def level_seed(seed: int, level: int) -> int:
    """The RNG seed of one level (the same for every batch of a run, so results can resume)."""
    return (seed * 1_000_003 + level) % (2**63)


def _state_copy(model: nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in model.state_dict().items()}


@torch.no_grad()
def _load(model: nn.Module, state: dict[str, torch.Tensor]) -> None:
    for k, v in model.state_dict().items():
        v.copy_(state[k])


@contextmanager
def restored(model: nn.Module) -> Iterator[None]:
    """Snapshot ``model``'s state once and restore it on exit (also when the body raises)."""
    snapshot = _state_copy(model)
    try:
        yield
    finally:
        _load(model, snapshot)


def levels(
    model: nn.Module, layers: list[RandomisationLevel], mode: str, seed: int
) -> Iterator[tuple[int, RandomisationLevel]]:
    """Randomise ``model`` level by level, yielding (level, layer) with the model in that state.

    The caller wraps the loop in ``restored(model)``. Level numbers start at 1 (0 = original).
    """
    if mode not in MODES:
        raise InvalidParameterError(f"mode must be one of {', '.join(MODES)}; got {mode!r}")
    snapshot = _state_copy(model) if mode == "independent" else None
    for i, layer in enumerate(layers, start=1):
        if snapshot is not None and i > 1:
            _load(model, snapshot)
        randomise(model, layer, level_seed(seed, i))
        yield i, layer


AttributionFn = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


def similarity_by_level(
    model: nn.Module,
    attribute: dict[str, AttributionFn],
    x: torch.Tensor,
    target: torch.Tensor,
    layers: list[RandomisationLevel],
    mode: str,
    seed: int,
    noise_seed: Sequence[int] = (0,),
    on_level: Callable[[int], None] | None = None,
    maps_out: dict[str, list[np.ndarray]] | None = None,
) -> dict[str, dict[str, np.ndarray]]:
    """Per method and similarity (spearman, spearman_abs, ssim): an array (L + 1, B).

    Row 0 compares the original attribution with itself; row l the attribution of the model
    randomised to level l. The model is restored afterwards. With ``maps_out``, the first
    sample's map of every level is appended to ``maps_out[method]``.
    """

    def explain_all() -> dict[str, np.ndarray]:
        return {m: fn(x, target).detach().to("cpu", torch.float64).numpy() for m, fn in attribute.items()}

    rng = np.random.default_rng([*noise_seed, seed])
    original = explain_all()
    out: dict[str, dict[str, list[np.ndarray]]] = {m: {} for m in attribute}

    def record(maps: dict[str, np.ndarray]) -> None:
        for m, a in maps.items():
            if maps_out is not None:
                maps_out.setdefault(m, []).append(a[0])
            for key, v in compare_maps(original[m], a, rng).items():
                out[m].setdefault(key, []).append(v)

    record(original)
    with restored(model):
        for i, _ in levels(model, layers, mode, seed):
            record(explain_all())
            if on_level is not None:
                on_level(i)
    return {m: {k: np.stack(v) for k, v in d.items()} for m, d in out.items()}
