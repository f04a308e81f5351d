"""Fully connected classifier (the MLPs of docs/methods.md#lrp-mnist): Flatten -> [Linear -> activation]*
-> Linear."""

from __future__ import annotations

from collections.abc import Sequence

from torch import nn

from xai_serve.errors import InvalidParameterError
from xai_serve.models.registry import register_model

ACTIVATIONS: dict[str, type[nn.Module]] = {"relu": nn.ReLU, "sigmoid": nn.Sigmoid, "tanh": nn.Tanh}


class MLP(nn.Sequential):
    """``Flatten``, then per hidden size ``Linear`` + its own activation module (+ ``Dropout`` if > 0),
    then the classifier ``Linear``."""

    def __init__(
        self,
        in_features: int,
        hidden: Sequence[int] = (100, 100),
        num_classes: int = 10,
        activation: str = "relu",
        dropout: float = 0.0,
    ) -> None:
        if activation not in ACTIVATIONS:
            raise InvalidParameterError(
                f"activation must be one of {sorted(ACTIVATIONS)}, got {activation!r}"
            )
        layers: list[nn.Module] = [nn.Flatten()]
        width = in_features
        for size in hidden:
            layers += [nn.Linear(width, int(size)), ACTIVATIONS[activation]()]
            if dropout > 0:
                layers.append(nn.Dropout(dropout))
            width = int(size)
        layers.append(nn.Linear(width, num_classes))
        super().__init__(*layers)


@register_model("mlp")
def mlp(
    in_features: int | None = None,
    input_shape: Sequence[int] | None = None,
    hidden: Sequence[int] = (100, 100),
    num_classes: int = 10,
    activation: str = "relu",
    dropout: float = 0.0,
) -> MLP:
    """MLP on a flattened input; give ``in_features`` or ``input_shape`` ([C, H, W])."""
    if in_features is None:
        if input_shape is None:
            raise InvalidParameterError("mlp needs in_features or input_shape")
        in_features = 1
        for dim in input_shape:
            in_features *= int(dim)
    return MLP(int(in_features), hidden, num_classes, activation, dropout)
