"""Run directories: atomic, resumable storage of per-batch results.

Layout of a run directory::

    run.json              the run's configuration, seed and versions (compared on --resume)
    parts/<name>.npz      one file per finished batch, written atomically (tmp + fsync + rename)
    *.csv *.json *.png    final outputs, assembled from the parts in batch order (also atomic)
    report.html

A run killed at any moment leaves only whole part files (a half-written one is a ``.tmp`` that is
ignored and removed on resume), so ``--resume`` recomputes exactly the missing batches and the
assembled outputs are identical to an uninterrupted run: no duplicated or missing rows.
"""

from __future__ import annotations

import contextlib
import csv
import io
import json
import os
import platform
import shutil
import sys
import zipfile
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import numpy as np

from xai_serve.atomic import atomic_write_bytes, atomic_write_text
from xai_serve.errors import InvalidArgumentError

RUN_FILE = "run.json"
PARTS = "parts"


def npz_bytes(arrays: Mapping[str, Any], compress: bool = False) -> bytes:
    """``np.savez`` content without timestamps: the same arrays give the same bytes (runs on
    different backends or shards are compared byte for byte). ``np.load`` reads it."""
    buf = io.BytesIO()
    method = zipfile.ZIP_DEFLATED if compress else zipfile.ZIP_STORED
    with zipfile.ZipFile(buf, "w", compression=method) as z:
        for key, value in arrays.items():
            info = zipfile.ZipInfo(f"{key}.npy", date_time=(1980, 1, 1, 0, 0, 0))
            info.compress_type = method
            with z.open(info, "w", force_zip64=True) as f:
                np.lib.format.write_array(f, np.asanyarray(value), allow_pickle=False)
    return buf.getvalue()


def write_json(path: Path, obj: Any) -> None:
    atomic_write_text(path, json.dumps(obj, indent=2, sort_keys=True, allow_nan=True) + "\n")


def _cell(v: Any) -> Any:
    if v is None:
        return ""
    if isinstance(v, float | np.floating):
        return repr(float(v))
    if isinstance(v, np.integer):
        return int(v)
    return v


def write_csv(path: Path, rows: Iterable[Mapping[str, Any]], columns: list[str] | None = None) -> None:
    """Write dict rows as CSV (floats with full precision, ``None`` as empty), atomically."""
    rows = list(rows)
    cols = columns or (list(rows[0]) if rows else [])
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=cols, lineterminator="\n", extrasaction="ignore")
    w.writeheader()
    for r in rows:
        w.writerow({k: _cell(r.get(k)) for k in cols})
    atomic_write_text(path, buf.getvalue())


def versions() -> dict[str, str]:
    """Versions of the software that produced a run."""
    import scipy
    import sklearn
    import torch

    import xai_serve

    return {
        "xai_serve": xai_serve.__version__,
        "torch": torch.__version__,
        "numpy": np.__version__,
        "scipy": scipy.__version__,
        "scikit_learn": sklearn.__version__,
        "python": sys.version.split()[0],
        "platform": platform.platform(),
    }


class RunDir:
    """An output directory of one evaluation run, with its per-batch part store."""

    def __init__(self, root: Path, config: dict[str, Any]) -> None:
        self.root = root
        self.config = config
        self.parts = root / PARTS

    @classmethod
    def open(
        cls,
        root: str | os.PathLike[str],
        config: dict[str, Any],
        *,
        resume: bool = False,
        overwrite: bool = False,
    ) -> RunDir:
        """Create a run directory, or reopen one with ``resume`` (same configuration required).

        An existing run without ``resume`` is an error unless ``overwrite`` (which empties it).
        """
        path = Path(root)
        run_file = path / RUN_FILE
        if run_file.exists():
            if resume:
                old = json.loads(run_file.read_text())
                if old.get("config") != json.loads(json.dumps(config)):
                    diff = sorted(
                        k
                        for k in {*old.get("config", {}), *config}
                        if old.get("config", {}).get(k) != config.get(k)
                    )
                    raise InvalidArgumentError(
                        f"--resume: {path} was started with a different configuration (differs in: "
                        f"{', '.join(diff)}); use a new --out or --overwrite"
                    )
                run = cls(path, config)
                run._clean_tmp()
                return run
            if not overwrite:
                raise InvalidArgumentError(
                    f"{path} already holds a run; pass --resume to continue it or --overwrite to replace it"
                )
            shutil.rmtree(path)
        elif path.exists() and any(path.iterdir()) and not overwrite:
            raise InvalidArgumentError(f"{path} exists and is not empty; choose another --out or --overwrite")
        path.mkdir(parents=True, exist_ok=True)
        write_json(run_file, {"config": config, "versions": versions(), "seed": config.get("seed")})
        return cls(path, config)

    @classmethod
    def open_shared(cls, root: str | os.PathLike[str], config: dict[str, Any]) -> RunDir:
        """Open a run that several processes fill at once (``--shard K/N``, Ray tasks): create it
        if missing, else require the same configuration. Never empties it and never removes
        temporary files (they may be another shard's writes in progress)."""
        path = Path(root)
        run_file = path / RUN_FILE
        if not run_file.exists():
            path.mkdir(parents=True, exist_ok=True)
            write_json(run_file, {"config": config, "versions": versions(), "seed": config.get("seed")})
        old = json.loads(run_file.read_text())
        if old.get("config") != json.loads(json.dumps(config)):
            raise InvalidArgumentError(
                f"{path} holds a run with a different configuration; shards of one job must agree"
            )
        return cls(path, config)

    def _clean_tmp(self) -> None:
        for tmp in self.root.rglob(".*.tmp"):
            with contextlib.suppress(OSError):
                tmp.unlink()

    def part_path(self, name: str) -> Path:
        return self.parts / f"{name}.npz"

    def has_part(self, name: str) -> bool:
        return self.part_path(name).exists()

    def save_part(self, name: str, arrays: Mapping[str, np.ndarray]) -> None:
        atomic_write_bytes(self.part_path(name), npz_bytes(arrays))

    def load_part(self, name: str) -> dict[str, np.ndarray]:
        with np.load(self.part_path(name), allow_pickle=False) as z:
            return {k: z[k] for k in z.files}

    def path(self, *names: str) -> Path:
        p = self.root.joinpath(*names)
        p.parent.mkdir(parents=True, exist_ok=True)
        return p
