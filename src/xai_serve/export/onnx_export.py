"""ONNX export of a registered model (``xai export-onnx``), checked with the ``onnx`` checker.

The graph's input is ``input`` (N, C, H, W, normalised as the model card says); its outputs are
named after the card's outputs (``logits`` for a single classifier). The model card (labels,
mean, std, outputs) is stored in the ONNX model's metadata (key ``xai_serve.model_card``), so a
user serving predictions elsewhere has what preprocessing needs. TorchScript-based exporter: it
needs no extra package and handles every registered model.
"""

from __future__ import annotations

import json
import os
import warnings
from pathlib import Path
from typing import Any

from xai_serve.errors import CheckpointError

DEFAULT_OPSET = 17
METADATA_KEY = "xai_serve.model_card"


def output_names(card: Any) -> list[str]:
    return list(card.outputs) if getattr(card, "outputs", None) else ["logits"]


def export_model(
    model: Any,
    input_shape: list[int] | tuple[int, ...],
    path: str | os.PathLike[str],
    *,
    outputs: list[str] | None = None,
    opset: int = DEFAULT_OPSET,
    dynamic_batch: bool = False,
    metadata: dict[str, str] | None = None,
) -> Path:
    """Export ``model`` (eval mode) for inputs of ``(N, *input_shape)`` to ``path`` and check it.

    ``dynamic_batch``: the batch axis is symbolic (``batch``); otherwise it is fixed at 1.
    """
    import onnx
    import torch

    from xai_serve.atomic import atomic_write_bytes

    outputs = outputs or ["logits"]
    model = model.eval()
    x = torch.zeros(1, *input_shape)
    axes = {n: {0: "batch"} for n in ["input", *outputs]} if dynamic_batch else None
    path = Path(path)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.export")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # the TorchScript exporter's deprecation and tracer notes
            torch.onnx.export(
                model,
                (x,),
                str(tmp),
                dynamo=False,
                opset_version=opset,
                input_names=["input"],
                output_names=outputs,
                dynamic_axes=axes,
                do_constant_folding=True,
            )
        proto = onnx.load(str(tmp))
    except Exception as e:
        raise CheckpointError(f"ONNX export failed: {e}") from e
    finally:
        tmp.unlink(missing_ok=True)
    for key, value in (metadata or {}).items():
        entry = proto.metadata_props.add()
        entry.key, entry.value = key, value
    proto.producer_name = "xai-serve"
    onnx.checker.check_model(proto, full_check=True)
    atomic_write_bytes(path, proto.SerializeToString())
    return path


def export_checkpoint(
    checkpoint: str | os.PathLike[str],
    out: str | os.PathLike[str] | None = None,
    *,
    which: str = "best",
    opset: int = DEFAULT_OPSET,
    dynamic_batch: bool = False,
) -> Path:
    """Export the model of a checkpoint directory to ``out`` (default ``CHECKPOINT/model.onnx``)."""
    from xai_serve.models import load_checkpoint

    model, card = load_checkpoint(checkpoint, which)  # type: ignore[arg-type]
    path = Path(out) if out else Path(checkpoint) / "model.onnx"
    return export_model(
        model,
        card.input_shape,
        path,
        outputs=output_names(card),
        opset=opset,
        dynamic_batch=dynamic_batch,
        metadata={METADATA_KEY: json.dumps(card.to_dict(), sort_keys=True)},
    )


def export_card_weights(card: Any, weights: str | os.PathLike[str], path: str | os.PathLike[str]) -> Path:
    """Export the model a card describes, with the weights of a state_dict file (``xai archive --onnx``)."""
    from xai_serve.models import build_from_card, load_state_dict_file

    model = build_from_card(card, Path(weights).parent)  # a model file is packed beside the weights
    try:
        model.load_state_dict(load_state_dict_file(weights))
    except RuntimeError as e:
        raise CheckpointError(f"{weights} does not match model {card.model!r}: {e}") from e
    return export_model(
        model,
        card.input_shape,
        path,
        outputs=output_names(card),
        dynamic_batch=True,
        metadata={METADATA_KEY: json.dumps(card.to_dict(), sort_keys=True)},
    )
