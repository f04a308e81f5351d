"""A user's own model class from a Python file (TorchServe's ``--model-file`` convention).

``xai import --model-file net.py --model-class Net --kwargs '{"width": 32}'`` copies ``net.py`` into
the checkpoint directory and records its name and sha256 in the card (``model_file``,
``model_file_sha256``; ``model`` is the class name). :func:`build_from_card` (used by
``load_checkpoint``, the archive builder and the TorchServe worker) checks the sha256, imports the file
from the directory under a module name derived from its hash, and builds the class with the card's
kwargs. A file that raises on import is a :class:`~xai_serve.errors.ModelFileError` whose message ends
with the traceback's last line.
"""

from __future__ import annotations

import importlib.util
import os
import sys
import traceback
from pathlib import Path
from types import ModuleType
from typing import Any

from torch import nn

from xai_serve.errors import ModelFileError
from xai_serve.hashing import file_sha256
from xai_serve.models.canonicalise import canonicalise
from xai_serve.models.card import ModelCard
from xai_serve.models.registry import create_model


def _last_line(exc: BaseException) -> str:
    lines = traceback.format_exception_only(type(exc), exc)
    return lines[-1].strip() if lines else repr(exc)


def import_model_file(path: str | os.PathLike[str], sha256: str | None = None) -> ModuleType:
    """Import the Python file ``path`` (once per content: the module name carries its hash)."""
    path = Path(path)
    if not path.is_file():
        raise ModelFileError(f"model file not found: {path}")
    if path.suffix != ".py":
        raise ModelFileError(f"model file must be a .py file: {path}")
    digest = file_sha256(path)
    if sha256 is not None and digest != sha256:
        raise ModelFileError(f"{path.name}: sha256 differs from the model card's ({digest[:12]}...)")
    name = f"xai_user_model_{path.stem}_{digest[:16]}"
    if name in sys.modules:
        return sys.modules[name]
    spec = importlib.util.spec_from_file_location(name, path)
    if spec is None or spec.loader is None:
        raise ModelFileError(f"cannot import {path}")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    try:
        spec.loader.exec_module(module)
    except BaseException as exc:
        del sys.modules[name]
        tb = traceback.extract_tb(exc.__traceback__)
        where = next(
            (f"{Path(f.filename).name}:{f.lineno}" for f in reversed(tb) if f.filename == str(path)), ""
        )
        raise ModelFileError(
            f"importing {path.name} failed{' at ' + where if where else ''}: {_last_line(exc)}"
        ) from None
    return module


def build_user_model(module: ModuleType, class_name: str, kwargs: dict[str, Any], source: str) -> nn.Module:
    """``module.class_name(**kwargs)``, checked to be an ``nn.Module``, canonicalised."""
    cls = getattr(module, class_name, None)
    if cls is None:
        found = sorted(
            n
            for n, v in vars(module).items()
            if isinstance(v, type) and issubclass(v, nn.Module) and v.__module__ == module.__name__
        )
        raise ModelFileError(
            f"{source} defines no {class_name!r}; nn.Module classes in it: {', '.join(found) or 'none'}"
        )
    if not (isinstance(cls, type) and issubclass(cls, nn.Module)):
        raise ModelFileError(f"{source}: {class_name} is not an nn.Module class")
    try:
        model = cls(**kwargs)
    except Exception as exc:
        raise ModelFileError(f"{source}: {class_name}(**{kwargs!r}) failed: {_last_line(exc)}") from None
    return canonicalise(model)


def build_from_card(card: ModelCard, directory: str | os.PathLike[str]) -> nn.Module:
    """The (randomly initialised) model ``card`` describes: a registry model, or the class of the card's
    model file in ``directory``."""
    if not card.model_file:
        return create_model(card.model, **card.model_kwargs)
    path = Path(directory) / card.model_file
    module = import_model_file(path, card.model_file_sha256 or None)
    return build_user_model(module, card.model, dict(card.model_kwargs), card.model_file)
