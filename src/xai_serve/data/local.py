"""Helpers for datasets read from local folders (never downloaded)."""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path

from xai_serve.errors import DatasetNotFoundError

DATA_ENV = "XAI_DATA_DIR"


def data_root(root: str | os.PathLike[str] | None) -> Path:
    """``root`` if given, else ``$XAI_DATA_DIR``, else ``./data``."""
    if root is not None:
        return Path(root)
    return Path(os.environ.get(DATA_ENV, "data"))


def require_files(name: str, folder: Path, files: Iterable[str], hint: str) -> None:
    """Raise :class:`DatasetNotFoundError` listing every missing file of ``folder``."""
    files = list(files)
    missing = [f for f in files if not (folder / f).is_file()]
    if missing:
        raise DatasetNotFoundError(
            f"{name}: missing {len(missing)} of {len(files)} files in {folder}: {', '.join(missing)}. "
            f"{hint} Nothing is downloaded; pass root=... (CLI --data-root / recipe data.root) "
            f"or set ${DATA_ENV}."
        )
