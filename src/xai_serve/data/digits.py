"""``digits``: scikit-learn's bundled handwritten digits (UCI optdigits test part), no download.

1,797 grey images of 8x8 pixels with values 0..16. Scaled to [0, 1], resized (bilinear) to 28x28
(``channels=1``) or to 32x32 and repeated to three channels (``channels=3``, for CIFAR-shaped models),
then normalised by the mean/std of the training split. The split is stratified and seeded:
70 % train, 10 % val, 20 % test per class (1,259 / 179 / 359 images).
"""

from __future__ import annotations

import os
from functools import lru_cache

import numpy as np
import torch
import torch.nn.functional as F

from xai_serve.data.bundle import DatasetBundle, TensorImageDataset
from xai_serve.data.registry import register_dataset
from xai_serve.data.splits import stratified_split
from xai_serve.errors import InvalidParameterError

FRACTIONS = (0.7, 0.1, 0.2)
LABELS = [str(i) for i in range(10)]


@lru_cache(maxsize=4)
def _pixels(channels: int) -> tuple[torch.Tensor, np.ndarray]:
    from sklearn.datasets import load_digits

    raw = load_digits()
    images = torch.from_numpy(raw.images.astype(np.float32) / 16.0).unsqueeze(1)  # [N,1,8,8] in [0,1]
    size = 28 if channels == 1 else 32
    images = F.interpolate(images, size=(size, size), mode="bilinear", align_corners=False)
    images = images.clamp(0.0, 1.0).repeat(1, channels, 1, 1)
    return images, raw.target.astype(np.int64)


@register_dataset("digits")
def load_digits_bundle(
    split: str,
    *,
    root: str | os.PathLike[str] | None = None,
    seed: int = 0,
    channels: int | None = None,
) -> DatasetBundle:
    channels = 1 if channels is None else channels
    if channels not in (1, 3):
        raise InvalidParameterError(f"digits supports channels 1 or 3, got {channels}")
    images, targets = _pixels(channels)
    parts = stratified_split(targets, FRACTIONS, seed)
    train = images[torch.from_numpy(parts["train"])]
    mean = train.mean(dim=(0, 2, 3))
    std = train.std(dim=(0, 2, 3))
    idx = torch.from_numpy(parts[split])
    x = (images[idx] - mean.view(-1, 1, 1)) / std.view(-1, 1, 1)
    y = torch.from_numpy(targets)[idx]
    return DatasetBundle(
        name="digits",
        split=split,
        dataset=TensorImageDataset(x.contiguous(), y),
        mean=[float(v) for v in mean],
        std=[float(v) for v in std],
        labels=list(LABELS),
        input_shape=list(x.shape[1:]),
    )
