"""Token models (vision transformers) for the layer methods: which layer, and how tokens become a map.

A model *has attention* when it holds an ``nn.MultiheadAttention`` or a module class named
``...Attention``. For such a model:

* :func:`token_layer` is the default layer of Grad-CAM and the other layer methods: the last attention
  block's input normalisation (``encoder.layers[-1].ln_1`` in torchvision's ViT). After the last block
  only the class token reaches the head, so the block's output (or the final LayerNorm) gives every patch
  token a zero gradient and an all-zero map; the input normalisation still mixes all tokens through the
  block's attention. Found with one probe forward pass: the last normalisation inside the last attention
  block that finishes before that block's attention (a post-norm block has none: then the previous
  block, whose output is this block's input).
* :func:`token_grid` turns a ``(B, N, C)`` layer output into a ``(B, C, h, w)`` map: the leading extra
  tokens (class / distillation tokens) are dropped and the patch tokens reshaped to the input's patch grid
  (14 x 14 for ViT-B/16 at 224), as pytorch-grad-cam's ``reshape_transform`` recipe does.
"""

from __future__ import annotations

import math
import weakref
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from xai_serve.errors import InvalidParameterError
from xai_serve.explain.probe import probe

NORM_TYPES: tuple[type[nn.Module], ...] = (nn.LayerNorm, nn.RMSNorm)
MAX_EXTRA_TOKENS = 8

_LAYER: weakref.WeakKeyDictionary[nn.Module, dict[tuple[int, ...], str]] = weakref.WeakKeyDictionary()


def is_attention(module: nn.Module) -> bool:
    return isinstance(module, nn.MultiheadAttention) or type(module).__name__.endswith("Attention")


def contains_attention(model: nn.Module) -> bool:
    """Whether ``model`` holds an attention module (then it is a token model)."""
    return any(is_attention(m) for m in model.modules())


def token_layer(model: nn.Module, sample_shape: Sequence[int], *, param: str = "layer") -> str:
    """The default layer of a token model for inputs of ``sample_shape`` (see the module docstring)."""
    key = tuple(int(v) for v in sample_shape)
    cached = _LAYER.setdefault(model, {})
    if key in cached:
        return cached[key]
    finished: list[str] = []
    handles = [
        m.register_forward_hook(lambda mod, i, o, _n=name: finished.append(_n))
        for name, m in model.named_modules()
        if name
    ]
    probe(model, key, handles, param=param)
    modules = dict(model.named_modules())
    attentions = [n for n in finished if is_attention(modules[n])]
    if not attentions:
        raise InvalidParameterError(
            f"parameter {param!r}: the model's attention is never called; name a layer"
        )
    last = attentions[-1]
    block = last.rpartition(".")[0]
    end = finished.index(last)
    prefix = f"{block}." if block else ""
    norms = [n for n in finished[:end] if n.startswith(prefix) and isinstance(modules[n], NORM_TYPES)]
    if norms:
        chosen = norms[-1]
    else:  # post-norm: the block's input is the output of the module called before the block
        parent = block.rpartition(".")[0]
        siblings = [n for n, _ in modules[parent].named_children()] if block else []
        position = siblings.index(block.rpartition(".")[2]) if siblings else 0
        if position == 0:
            raise InvalidParameterError(
                f"parameter {param!r}: no input normalisation before the attention {last!r}; name a layer"
            )
        chosen = f"{parent}.{siblings[position - 1]}" if parent else siblings[position - 1]
    cached[key] = chosen
    return chosen


@dataclass(frozen=True)
class TokenGrid:
    """How a ``(B, N, C)`` token output maps onto the input: ``extra`` leading tokens dropped, the rest an
    ``h x w`` grid."""

    extra: int
    h: int
    w: int

    def describe(self, layer: str) -> str:
        """The layer as a heatmap names it: ``"<layer> (tokens: <extra> dropped, <h>x<w> grid)"``."""
        return f"{layer} (tokens: {self.extra} dropped, {self.h}x{self.w} grid)"

    def to_map(self, tokens: torch.Tensor) -> torch.Tensor:
        """``(B, N, C)`` -> ``(B, C, h, w)``."""
        b, _, c = tokens.shape
        return tokens[:, self.extra :].reshape(b, self.h, self.w, c).permute(0, 3, 1, 2)


def token_grid(tokens: torch.Tensor, input_shape: Sequence[int], *, param: str = "layer") -> TokenGrid:
    """The grid of a batch-first ``(B, N, C)`` token output for an input ``(B, C, H, W)``: the fewest
    leading tokens (at most 8) whose removal leaves an ``h x w`` grid with ``h / w = H / W``."""
    if tokens.ndim != 3 or len(input_shape) != 4:
        raise InvalidParameterError(
            f"parameter {param!r}: a token layer needs a (B, N, C) output and a (B, C, H, W) input, got "
            f"{tuple(tokens.shape)} and {tuple(input_shape)}"
        )
    n, (height, width) = tokens.shape[1], (int(input_shape[2]), int(input_shape[3]))
    for extra in range(min(MAX_EXTRA_TOKENS, n - 1) + 1):
        count = n - extra
        h = round(math.sqrt(count * height / width))
        if h > 0 and count % h == 0 and h * width == (count // h) * height:
            return TokenGrid(extra, h, count // h)
    raise InvalidParameterError(
        f"parameter {param!r}: {n} tokens do not form a patch grid of a {height}x{width} input; "
        "name a layer with a (B, C, H, W) output"
    )


def as_map(activation: torch.Tensor, grad: torch.Tensor, input_shape: Sequence[int]) -> tuple[Any, Any, Any]:
    """``(activation, grad, grid)`` as ``(B, C, h, w)`` maps: token outputs reshaped (``grid`` says how),
    others as they are (``grid`` None)."""
    if activation.ndim != 3:
        return activation, grad, None
    grid = token_grid(activation, input_shape)
    return grid.to_map(activation), grid.to_map(grad), grid
