"""Finding a model layer from a user's description (a module name or a ``features`` index)."""

from __future__ import annotations

from torch import nn

from xai_serve.errors import InvalidParameterError


def find_layer(model: nn.Module, layer: str | int | None, *, param: str = "layer") -> tuple[str, nn.Module]:
    """``(name, module)`` for ``layer``.

    ``layer`` is a dotted module name (``"layer4.1.conv2"``, as in ``model.named_modules()``), an
    integer index into ``model.features`` (SimpleNet / VGG style, seed B; for a model without
    ``features`` an integer names a child of a Sequential model), or None for the last
    ``nn.Conv2d`` in registration order. Raises InvalidParameterError naming ``param``.
    """
    if layer is None:
        convs = [(name, m) for name, m in model.named_modules() if isinstance(m, nn.Conv2d)]
        if not convs:
            raise InvalidParameterError(f"parameter {param!r}: the model has no Conv2d layer; name one")
        return convs[-1]
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
