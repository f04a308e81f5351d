"""Activations of one layer for every image of a probing set (docs/methods.md#compexp-algorithm, step 1),
streamed in batches into a memory-mapped ``.npy`` (N, U, h, w) float32, with its shape and layer recorded in a
JSON file.

The model runs in eval mode without gradients; each batch's forward pass stops at the named module,
whose output is kept (:func:`~xai_serve.models.layers.layer_output`).
Images are converted to the model card's channels and input size and normalised with its mean/std.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import numpy as np

from xai_serve.atomic import atomic_target, atomic_write_text
from xai_serve.errors import InvalidArgumentError, NotFoundError
from xai_serve.models.layers import layer_output

ACTIVATIONS = "activations.npy"
ACTIVATIONS_META = "activations.json"


def find_module(model: Any, layer: str) -> Any:
    modules = dict(model.named_modules())
    if layer not in modules or not layer:
        names = [n for n in modules if n]
        raise NotFoundError(f"model has no module {layer!r}; modules: {', '.join(names)}")
    return modules[layer]


def preprocess(image: Any, input_shape: list[int], mean: list[float], std: list[float]) -> np.ndarray:
    """PIL RGB image -> normalised (C, H, W) float32 array for a model card's input."""
    from PIL import Image

    c, h, w = input_shape
    im = image.convert("L" if c == 1 else "RGB").resize((w, h), Image.Resampling.BILINEAR)
    x = np.asarray(im, np.float32) / 255.0
    x = x[None] if c == 1 else x.transpose(2, 0, 1)
    return (x - np.asarray(mean, np.float32)[:, None, None]) / np.asarray(std, np.float32)[:, None, None]


def extract(
    model: Any,
    card: Any,
    dataset: Any,
    layer: str,
    out_dir: str | os.PathLike[str],
    *,
    batch_size: int = 64,
    progress: bool = False,
) -> np.ndarray:
    """Write ``activations.npy`` + ``activations.json`` into ``out_dir`` (atomically: the array is
    written under a temporary name, then renamed; the JSON is written last) and return the memory map."""
    import torch

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    module = find_module(model, layer)
    array: Any = None
    n = len(dataset)
    model.eval()
    bar: Any = range(0, n, batch_size)
    if progress:
        from xai_serve.jobs.progress import progress as progress_bar

        bar = progress_bar(bar, desc=f"activations {layer}", unit="batch")
    with atomic_target(out / ACTIVATIONS) as tmp, torch.no_grad():
        for lo in bar:
            x = np.stack(
                [
                    preprocess(dataset.image(i), card.input_shape, card.mean, card.std)
                    for i in range(lo, min(n, lo + batch_size))
                ]
            )
            feats = layer_output(model, module, torch.from_numpy(x))
            if feats is None:
                raise InvalidArgumentError(f"module {layer!r} did not run in the forward pass")
            if not isinstance(feats, torch.Tensor) or feats.ndim != 4:
                raise InvalidArgumentError(
                    f"module {layer!r} outputs shape {tuple(getattr(feats, 'shape', ()))}; "
                    "dissection needs (N, C, H, W)"
                )
            if array is None:
                array = np.lib.format.open_memmap(
                    tmp, mode="w+", dtype=np.float32, shape=(n, *feats.shape[1:])
                )
            array[lo : lo + feats.shape[0]] = feats.float().cpu().numpy()
        if array is None:
            raise InvalidArgumentError("the probing set has no image")
        array.flush()
        shape = list(array.shape)
        del array
    meta = {"layer": layer, "shape": shape, "dtype": "float32", "file": ACTIVATIONS}
    atomic_write_text(out / ACTIVATIONS_META, json.dumps(meta, indent=1) + "\n")
    return load(out)


def load(out_dir: str | os.PathLike[str]) -> np.ndarray:
    """The memory map written by :func:`extract` (checked against the recorded shape)."""
    out = Path(out_dir)
    meta = json.loads((out / ACTIVATIONS_META).read_text())
    array = np.load(out / ACTIVATIONS, mmap_mode="r")
    if list(array.shape) != meta["shape"]:
        raise InvalidArgumentError(f"{out / ACTIVATIONS} has shape {array.shape}, recorded {meta['shape']}")
    return array


def exists(out_dir: str | os.PathLike[str]) -> bool:
    out = Path(out_dir)
    return (out / ACTIVATIONS_META).is_file() and (out / ACTIVATIONS).is_file()
