"""Serving models with several outputs (the General Pattern Theory ResGPTNet: ``y``, ``yg``, ``ys``).

* :func:`component_target`: the wire ``ComponentTarget`` -> the engine's
  :class:`~xai_serve.explain.targets.Component`, checked against the model card's ``outputs`` (an
  unknown or classifier output name, a negative pixel: ``InvalidTargetError`` -> INVALID_ARGUMENT;
  pixels and channels beyond the map are refused by the engine with the same error type).
* :func:`split_outputs`: a forward pass's classifier logits and per-pixel predicted maps.
* :func:`fill_outputs` / :func:`echo_component`: ``Prediction.outputs`` (arg-max channel per pixel of
  each non-classifier output, uint8 [H, W]) and ``Heatmap.component`` (the explained scalar, channel
  resolved).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from xai_client.api.v1 import explain_pb2 as pb
from xai_client.tensors import to_proto

from xai_serve.errors import InvalidTargetError
from xai_serve.explain.targets import Component
from xai_serve.models import ModelCard
from xai_serve.models.multi_output import primary


def component_target(target: pb.ComponentTarget, card: ModelCard) -> Component:
    """The engine target of a wire component target (validated against ``card.outputs``)."""
    maps = list(card.outputs[1:])
    if target.output not in maps:
        known = ", ".join(maps) if maps else "none: this model has one output (use a class target)"
        raise InvalidTargetError(
            f"unknown output {target.output!r} for a component target; the model's per-pixel outputs: {known}"
        )
    if target.row < 0 or target.col < 0:
        raise InvalidTargetError(f"pixel ({target.row}, {target.col}) is out of range (negative)")
    if target.WhichOneof("channel_kind") == "channel":
        if target.channel < 0:
            raise InvalidTargetError(f"channel {target.channel} is out of range (negative)")
        return Component(target.output, int(target.row), int(target.col), int(target.channel))
    return Component(target.output, int(target.row), int(target.col), "predicted")


def split_outputs(output: Any, card: ModelCard) -> tuple[torch.Tensor, list[tuple[str, torch.Tensor]]]:
    """``(classifier logits (B, K), [(name, predicted map (B, H, W) uint8)])`` of a forward pass."""
    logits = primary(output)
    maps: list[tuple[str, torch.Tensor]] = []
    if isinstance(output, tuple | list):
        for name, out in zip(card.outputs[1:], output[1:], strict=False):
            if isinstance(out, torch.Tensor) and out.ndim == 4 and out.shape[1] <= 256:
                maps.append((name, out.argmax(dim=1).to(torch.uint8)))
    return logits, maps


def fill_outputs(prediction: pb.Prediction, maps: list[tuple[str, torch.Tensor]], row: int) -> None:
    """Add each predicted map of sample ``row`` to ``prediction.outputs``."""
    for name, values in maps:
        item = prediction.outputs.add(name=name)
        to_proto(np.ascontiguousarray(values[row].cpu().numpy()), item.tensor)


def echo_component(heatmap: pb.Heatmap, target: Component, channel: int) -> None:
    """Set ``heatmap.component`` to the explained scalar, with the channel resolved."""
    heatmap.component.output = str(target.output)
    heatmap.component.row = int(target.row)
    heatmap.component.col = int(target.col)
    heatmap.component.channel = int(channel)
