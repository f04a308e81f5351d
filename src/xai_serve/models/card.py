"""``ModelCard``: what a checkpoint is (model name + kwargs, dataset, input shape, normalisation, labels).

Stored as ``model.json`` in every checkpoint directory; the archive builder and the serving handler
read it to rebuild the model and preprocess requests.
"""

from __future__ import annotations

import dataclasses
import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from xai_serve.atomic import atomic_write_text
from xai_serve.errors import CheckpointError

_OPTIONAL_DEFAULTS = ("resize", "model_file", "model_file_sha256")


@dataclass
class ModelCard:
    """JSON-serialisable description of a trained model."""

    model: str
    model_kwargs: dict[str, Any]
    dataset: str
    input_shape: list[int]
    mean: list[float]
    std: list[float]
    labels: list[str]
    num_classes: int = field(default=0)
    #: names of the model's outputs when it returns several (the first is the classifier), e.g.
    #: ``["y", "yg", "ys"]`` (General Pattern Theory); empty for a model returning one tensor, the class
    #: logits
    outputs: list[str] = field(default_factory=list)
    #: per-channel statistics of the training images in pixel space (0..1): ``{"mean": [C], "std": [C],
    #: "n": [images]}``, written by training; the reference of the served inputs' drift (live
    #: credentials). Empty on older cards: then the normalisation ``mean``/``std`` stand in (they are the
    #: training split's statistics for every built-in dataset)
    input_stats: dict[str, list[float]] = field(default_factory=dict)
    #: resize the shorter image side to this many pixels, then centre-crop to ``input_shape``'s size
    #: (ImageNet-style preprocessing, ``xai import --normalize imagenet``); 0: resize to the size directly
    resize: int = 0
    #: a user's model file (``xai import --model-file``) beside ``model.json``: ``model`` is then the
    #: class name in it; its sha256 is checked before it is imported (models/user_model.py)
    model_file: str = ""
    model_file_sha256: str = ""

    def __post_init__(self) -> None:
        if not self.num_classes:
            self.num_classes = len(self.labels)
        if len(self.labels) != self.num_classes:
            raise CheckpointError(
                f"model card has {len(self.labels)} labels but num_classes={self.num_classes}"
            )
        if not (len(self.mean) == len(self.std) == self.input_shape[0]):
            raise CheckpointError("model card mean/std must have one value per input channel")

    def to_dict(self) -> dict[str, Any]:
        data = dataclasses.asdict(self)
        for name in _OPTIONAL_DEFAULTS:  # absent when unused: cards written before them stay identical
            if not data[name]:
                del data[name]
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ModelCard:
        names = {f.name for f in dataclasses.fields(cls)}
        required = names - {"num_classes", "outputs", "input_stats", *_OPTIONAL_DEFAULTS}
        missing = sorted(required - data.keys())
        if missing:
            raise CheckpointError(f"model card lacks keys: {', '.join(missing)}")
        unknown = sorted(data.keys() - names)
        if unknown:
            raise CheckpointError(f"model card has unknown keys: {', '.join(unknown)}")
        return cls(
            model=str(data["model"]),
            model_kwargs=dict(data["model_kwargs"]),
            dataset=str(data["dataset"]),
            input_shape=[int(v) for v in data["input_shape"]],
            mean=[float(v) for v in data["mean"]],
            std=[float(v) for v in data["std"]],
            labels=[str(v) for v in data["labels"]],
            num_classes=int(data.get("num_classes", 0)),
            outputs=[str(v) for v in data.get("outputs", [])],
            input_stats={
                str(k): [float(v) for v in vs] for k, vs in dict(data.get("input_stats") or {}).items()
            },
            resize=int(data.get("resize", 0)),
            model_file=str(data.get("model_file", "")),
            model_file_sha256=str(data.get("model_file_sha256", "")),
        )

    def save(self, path: str | os.PathLike[str]) -> None:
        """Write the card as JSON (atomically)."""
        atomic_write_text(path, json.dumps(self.to_dict(), indent=2) + "\n")

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> ModelCard:
        path = Path(path)
        if not path.is_file():
            raise CheckpointError(f"model card not found: {path}")
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except json.JSONDecodeError as exc:
            raise CheckpointError(f"model card {path} is not valid JSON: {exc}") from exc
        if not isinstance(data, dict):
            raise CheckpointError(f"model card {path} must hold a JSON object")
        return cls.from_dict(data)
