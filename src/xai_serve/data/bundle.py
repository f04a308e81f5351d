"""``DatasetBundle``: a torch Dataset plus what a model and a heatmap renderer need to know about it."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch
from torch.utils.data import Dataset

SPLITS = ("train", "val", "test")


class TensorImageDataset(Dataset[tuple[torch.Tensor, int]]):
    """In-memory dataset of normalised images ``[N, C, H, W]`` and integer labels ``[N]``."""

    def __init__(self, images: torch.Tensor, targets: torch.Tensor) -> None:
        if images.shape[0] != targets.shape[0]:
            raise ValueError("images and targets differ in length")
        self.images = images
        self.targets = targets

    def __len__(self) -> int:
        return int(self.images.shape[0])

    def __getitem__(self, index: int) -> tuple[torch.Tensor, int]:
        return self.images[index], int(self.targets[index])


@dataclass
class DatasetBundle:
    """One split of a dataset: ``dataset`` yields ``(normalised float tensor [C,H,W], int label)``.

    ``mean``/``std`` (one value per channel) are the normalisation applied to the images in [0, 1];
    ``denormalise`` maps back to [0, 1] pixel space.
    """

    name: str
    split: str
    dataset: Dataset[tuple[torch.Tensor, int]]
    mean: list[float]
    std: list[float]
    labels: list[str]
    input_shape: list[int]

    @property
    def num_classes(self) -> int:
        return len(self.labels)

    def _stats(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        shape = [len(self.mean), 1, 1]
        mean = torch.tensor(self.mean, dtype=x.dtype, device=x.device).view(shape)
        std = torch.tensor(self.std, dtype=x.dtype, device=x.device).view(shape)
        return mean, std

    def normalise(self, x: torch.Tensor) -> torch.Tensor:
        """[0, 1] pixels ``[..., C, H, W]`` -> model input."""
        mean, std = self._stats(x)
        return (x - mean) / std

    def denormalise(self, x: torch.Tensor) -> torch.Tensor:
        """Model input ``[..., C, H, W]`` -> [0, 1] pixels."""
        mean, std = self._stats(x)
        return x * std + mean


def check_split(split: str) -> None:
    from xai_serve.errors import InvalidArgumentError

    if split not in SPLITS:
        raise InvalidArgumentError(f"split must be one of {', '.join(SPLITS)}, got {split!r}")


def as_floats(values: Sequence[float] | torch.Tensor) -> list[float]:
    return [float(v) for v in values]
