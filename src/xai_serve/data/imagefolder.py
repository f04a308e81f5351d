"""``imagefolder``: images in ``<root>/<split>/<class>/*.{png,jpg,...}`` (torchvision ``ImageFolder``).

``root`` is required. If ``<root>/val`` is absent, ``train``/``val`` are a seeded split of
``<root>/train`` (``val_fraction`` 0.1). Images are converted to ``channels`` (default 3) and resized to
``image_size`` (default: the size of the first training image); with ``resize`` the shorter side is
resized to ``resize`` and the centre ``image_size`` cut out (ImageNet's evaluation transform, a card's
``resize``). ``mean``/``std`` default to the
per-channel statistics of (up to 512 images of) the training folder.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import torch
from torch.utils.data import Dataset

from xai_serve.data.bundle import DatasetBundle
from xai_serve.data.registry import register_dataset
from xai_serve.data.splits import holdout_subset
from xai_serve.errors import DatasetNotFoundError, InvalidParameterError

LAYOUT = "expected <root>/<split>/<class name>/<image files> with split in train, val, test"


def _folder(root: Path, split: str) -> tuple[Path, bool]:
    """The folder holding ``split`` and whether it must be carved out of train."""
    if split in ("train", "val") and not (root / "val").is_dir() and (root / "train").is_dir():
        return root / "train", True
    if (root / split).is_dir():
        return root / split, False
    raise DatasetNotFoundError(f"imagefolder: {root / split} does not exist ({LAYOUT})")


@register_dataset("imagefolder")
def load_imagefolder(
    split: str,
    *,
    root: str | os.PathLike[str] | None = None,
    seed: int = 0,
    channels: int | None = None,
    val_fraction: float = 0.1,
    image_size: Sequence[int] | int | None = None,
    mean: Sequence[float] | None = None,
    std: Sequence[float] | None = None,
    resize: int = 0,
) -> DatasetBundle:
    from PIL import Image
    from torchvision import datasets, transforms

    if root is None:
        raise InvalidParameterError(f"imagefolder needs root ({LAYOUT})")
    channels = 3 if channels is None else channels
    if channels not in (1, 3):
        raise InvalidParameterError(f"imagefolder supports channels 1 or 3, got {channels}")
    base = Path(root)
    if not base.is_dir():
        raise DatasetNotFoundError(f"imagefolder: root {base} does not exist ({LAYOUT})")
    train_dir, _ = _folder(base, "train")
    folder, carve = _folder(base, split)
    try:
        probe = datasets.ImageFolder(str(train_dir))
    except (FileNotFoundError, RuntimeError) as exc:
        raise DatasetNotFoundError(f"imagefolder: no images under {train_dir} ({LAYOUT}): {exc}") from exc
    if image_size is None:
        with Image.open(probe.samples[0][0]) as first:
            image_size = (first.height, first.width)
    if isinstance(image_size, int):
        image_size = (image_size, image_size)
    size = (int(image_size[0]), int(image_size[1]))
    mode = "L" if channels == 1 else "RGB"
    # resize > 0: the shorter side to ``resize``, then the centre crop of ``size`` (ImageNet evaluation)
    sizing = [transforms.Resize(resize), transforms.CenterCrop(size)] if resize else [transforms.Resize(size)]
    to_tensor = transforms.Compose(
        [transforms.Lambda(lambda im: im.convert(mode)), *sizing, transforms.ToTensor()]
    )
    if mean is None or std is None:
        raw = datasets.ImageFolder(str(train_dir), transform=to_tensor)
        pick = torch.linspace(0, len(raw) - 1, min(len(raw), 512)).long().tolist()
        stack = torch.stack([raw[i][0] for i in pick])
        mean = stack.mean(dim=(0, 2, 3)).tolist()
        std = stack.std(dim=(0, 2, 3)).clamp_min(1e-6).tolist()
    normalise = transforms.Normalize(list(mean), list(std))
    full = datasets.ImageFolder(str(folder), transform=transforms.Compose([to_tensor, normalise]))
    dataset: Dataset[tuple[torch.Tensor, int]] = full
    if carve:
        dataset = holdout_subset(full, split, val_fraction, seed)
    return DatasetBundle(
        name="imagefolder",
        split=split,
        dataset=dataset,
        mean=[float(v) for v in mean],
        std=[float(v) for v in std],
        labels=list(probe.classes),
        input_shape=[channels, size[0], size[1]],
    )
