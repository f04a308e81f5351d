"""Finding a model layer from a user's description (a module name or a ``features`` index)."""

from __future__ import annotations

import weakref
from collections.abc import Sequence
from typing import Any

import torch
from torch import nn

from xai_serve.errors import InvalidParameterError
from xai_serve.explain.probe import probe
from xai_serve.explain.tokens import contains_attention, token_layer

_SPATIAL: weakref.WeakKeyDictionary[nn.Module, dict[tuple[int, ...], str]] = weakref.WeakKeyDictionary()


def spatial_layer(model: nn.Module, sample_shape: Sequence[int], *, param: str = "layer") -> str:
    """The default layer of the layer methods (Grad-CAM, guided Grad-CAM, layer guided backprop).

    Rule: the *last module whose output still has spatial extent*: a forward probe with one zero input
    of ``sample_shape`` (C, H, W) records, in the order the modules finish, every module (not the model
    itself) whose output is a (B, C, H, W) tensor with ``H * W > 1``; modules called more than once in a
    forward pass (a shared ReLU) are skipped, since their output is ambiguous. The last one is chosen, so
    a container wins over its children (torchvision ResNets: ``layer4``, 7x7 at 224; SimpleNet: its last
    feature block before the global pool). A 1x1 layer would give a constant map. The result is cached
    per model and input shape.
    """
    key = tuple(int(v) for v in sample_shape)
    cached = _SPATIAL.setdefault(model, {})
    if key in cached:
        return cached[key]
    order: list[str] = []
    calls: dict[str, int] = {}
    spatial: dict[str, bool] = {}

    def record(name: str) -> Any:
        def hook(module: nn.Module, inputs: Any, output: Any) -> None:
            calls[name] = calls.get(name, 0) + 1
            spatial[name] = (
                isinstance(output, torch.Tensor)
                and output.ndim == 4
                and output.shape[2] * output.shape[3] > 1
            )
            order.append(name)

        return hook

    handles = [m.register_forward_hook(record(name)) for name, m in model.named_modules() if name]
    probe(model, key, handles, param=param)
    chosen = [name for name in order if spatial[name] and calls[name] == 1]
    if not chosen:
        raise InvalidParameterError(
            f"parameter {param!r}: no module of the model outputs a (B, C, H, W) map larger than 1x1 on an "
            f"input of shape {list(key)}; name a layer"
        )
    cached[key] = chosen[-1]
    return chosen[-1]


def find_layer(
    model: nn.Module,
    layer: str | int | None,
    *,
    param: str = "layer",
    sample_shape: Sequence[int] | None = None,
) -> tuple[str, nn.Module]:
    """``(name, module)`` for ``layer``.

    ``layer`` is a dotted module name (``"layer4.1.conv2"``, as in ``model.named_modules()``), an
    integer index into ``model.features`` (SimpleNet / VGG style, the SimpleNet study; for a model without
    ``features`` an integer names a child of a Sequential model), or None for the default layer
    :func:`spatial_layer` finds on an input of ``sample_shape`` (C, H, W) (a model with attention:
    :func:`~xai_serve.explain.tokens.token_layer`). Raises InvalidParameterError
    naming ``param``.
    """
    if layer is None:
        if sample_shape is None:
            raise InvalidParameterError(f"parameter {param!r}: the default layer needs the input shape")
        if contains_attention(model):  # a token model: the last attention block's input normalisation
            name = token_layer(model, sample_shape, param=param)
        else:
            name = spatial_layer(model, sample_shape, param=param)
        return name, model.get_submodule(name)
    if isinstance(layer, int):
        features = getattr(model, "features", None)
        if not isinstance(features, nn.Sequential) and str(layer) in dict(model.named_modules()):
            return str(layer), model.get_submodule(str(layer))  # a Sequential model's child "3"
        if not isinstance(features, nn.Sequential):
            raise InvalidParameterError(
                f"parameter {param!r}: an index needs a model with a `features` Sequential; use a module name"
            )
        if not -len(features) <= layer < len(features):
            raise InvalidParameterError(
                f"parameter {param!r}: index {layer} is out of range for features[0..{len(features) - 1}]"
            )
        index = layer % len(features)
        return f"features.{index}", features[index]
    modules = dict(model.named_modules())
    if layer not in modules or layer == "":
        sample = [n for n in modules if n][:8]
        raise InvalidParameterError(
            f"parameter {param!r}: the model has no module named {layer!r} (e.g. {', '.join(sample)})"
        )
    return layer, modules[layer]


class LayerChoice:
    """A layer parameter resolved once: a named layer at construction (errors early), the default layer
    (:func:`spatial_layer`) at the first input, whose shape it needs."""

    def __init__(self, model: nn.Module, layer: str | int | None, *, param: str = "layer") -> None:
        self.model, self.param = model, param
        self._shape: tuple[int, ...] | None = None
        self._named = layer is not None
        self._layer: tuple[str, nn.Module] | None = None
        if self._named:
            self._layer = find_layer(model, layer, param=param)

    def resolve(self, x: torch.Tensor) -> tuple[str, nn.Module]:
        """``(name, module)`` for input batch ``x``."""
        shape = tuple(int(v) for v in x.shape[1:])
        if not self._named and (self._layer is None or self._shape != shape):
            self._layer = find_layer(self.model, None, param=self.param, sample_shape=shape)
            self._shape = shape
        assert self._layer is not None
        return self._layer

    @property
    def name(self) -> str:
        if self._layer is None:
            raise RuntimeError("LayerChoice.resolve(x) must run first")
        return self._layer[0]

    @property
    def module(self) -> nn.Module:
        if self._layer is None:
            raise RuntimeError("LayerChoice.resolve(x) must run first")
        return self._layer[1]
