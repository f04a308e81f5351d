"""One forward pass of a model on a zero input, to read its layers' outputs through forward hooks (how a
method chooses its default layer: :mod:`xai_serve.explain.layers`, :mod:`xai_serve.explain.tokens`)."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn
from torch.utils.hooks import RemovableHandle

from xai_serve.errors import InvalidParameterError


def probe(model: nn.Module, shape: Sequence[int], handles: list[RemovableHandle], *, param: str) -> None:
    """Run ``model`` in eval mode on zeros of ``(1, *shape)`` in its parameters' dtype and device, then
    remove ``handles`` (the caller's hooks) and restore the training flag (BatchNorm statistics are not
    updated). A model that cannot run on that input is an :class:`InvalidParameterError` for ``param``."""
    was_training = model.training
    try:
        model.eval()
        reference = next(iter(model.parameters()), None)
        x = torch.zeros(
            (1, *shape),
            dtype=reference.dtype if reference is not None else torch.float32,
            device=reference.device if reference is not None else None,
        )
        with torch.no_grad():
            model(x)
    except Exception as exc:
        raise InvalidParameterError(
            f"parameter {param!r}: could not probe the model on an input of shape {list(shape)} to choose "
            f"the default layer ({type(exc).__name__}: {exc}); name a layer"
        ) from None
    finally:
        for handle in handles:
            handle.remove()
        model.train(was_training)
