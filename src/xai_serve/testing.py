"""Small builders shared by the tests and the benchmarks (one copy each): a tiny checkpoint directory,
a tiny GPT (General Pattern Theory) checkpoint and its card, a PNG that is only a header, the text of a tiny
training recipe.

Nothing here is used by the service itself; it lives in the package so that ``tests/`` (imported in
pytest's importlib mode) and ``bench/`` use the same code.
"""

from __future__ import annotations

import struct
import zlib
from collections.abc import Sequence
from pathlib import Path
from typing import Any


def write_checkpoint(
    directory: str | Path,
    *,
    model: str = "simplenet_310k",
    model_kwargs: dict[str, Any] | None = None,
    input_shape: Sequence[int] = (1, 28, 28),
    mean: Sequence[float] = (0.25,),
    std: Sequence[float] = (0.5,),
    num_classes: int = 10,
    seed: int = 0,
    files: Sequence[str] = ("best.pt",),
    labels: Sequence[str] | None = None,
    dataset: str = "digits",
) -> Path:
    """A checkpoint directory of a random-weight model (``torch.manual_seed(seed)``): ``model.json``
    and its state_dict under each of ``files``. Default: SimpleNet-310k for 1x28x28 digits, mean 0.25,
    std 0.5, labels ``digit 0`` .. ``digit 9`` (or ``labels``)."""
    import torch

    from xai_serve.models import ModelCard, create_model

    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    kwargs = dict(model_kwargs) if model_kwargs is not None else {"num_classes": num_classes}
    torch.manual_seed(seed)
    state = create_model(model, **kwargs).state_dict()
    for name in files:
        torch.save(state, directory / name)
    ModelCard(
        model=model,
        model_kwargs=kwargs,
        dataset=dataset,
        input_shape=list(input_shape),
        mean=list(mean),
        std=list(std),
        labels=list(labels) if labels is not None else [f"digit {i}" for i in range(num_classes)],
    ).save(directory / "model.json")
    return directory


def gpt_card(width: int = 4) -> Any:
    """The model card of a ``resgptnet_small`` of the given width on pattern_digits (General Pattern Theory):
    1x28x28, mean 0, std 1, labels ``0`` .. ``9``, outputs ``y``, ``yg``, ``ys``."""
    from xai_serve.models import ModelCard

    return ModelCard(
        model="resgptnet_small",
        model_kwargs={"width": width},
        dataset="pattern_digits",
        input_shape=[1, 28, 28],
        mean=[0.0],
        std=[1.0],
        labels=[str(i) for i in range(10)],
        outputs=["y", "yg", "ys"],
    )


def write_gpt_checkpoint(
    directory: str | Path, *, width: int = 4, seed: int = 0, generator_bias: float = 0.0
) -> Path:
    """A checkpoint directory of a random-weight ``resgptnet_small`` (``torch.manual_seed(seed)``):
    ``best.pt`` and :func:`gpt_card`'s ``model.json``. ``generator_bias`` is added to the weights of
    the ``yg`` head's generator channel 1 (``cyg.c2.weight[:, 1]``) so that some pixels predict a
    non-empty generator."""
    import torch

    from xai_serve.models import create_model

    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(seed)
    model = create_model("resgptnet_small", width=width)
    if generator_bias:
        with torch.no_grad():
            model.get_parameter("cyg.c2.weight")[:, 1].add_(generator_bias)
    torch.save(model.state_dict(), directory / "best.pt")
    gpt_card(width).save(directory / "model.json")
    return directory


def png_header_only(width: int, height: int, color_type: int = 0) -> bytes:
    """A PNG whose IHDR claims ``width`` x ``height`` (8-bit; colour type 0 = grey, 2 = RGB) followed by
    one tiny IDAT: about 0.1 kB on the wire, for size limits checked before decoding."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        crc = struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)
        return struct.pack(">I", len(data)) + kind + data + crc

    ihdr = struct.pack(">IIBBBBB", width, height, 8, color_type, 0, 0, 0)
    idat = chunk(b"IDAT", zlib.compress(b"\0" * 16))
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + idat + chunk(b"IEND", b"")


def tiny_recipe_text(name: str = "tiny", *, seed: int = 0, epochs: int = 2, hidden: int = 16) -> str:
    """A TOML recipe that trains in about a second: an MLP on the built-in digits, Adam."""
    return f"""name = "{name}"
seed = {seed}
device = "cpu"
epochs = {epochs}
batch_size = 128
[model]
name = "mlp"
kwargs = {{ hidden = [{hidden}] }}
[data]
name = "digits"
[optimizer]
name = "adam"
lr = 0.01
"""
