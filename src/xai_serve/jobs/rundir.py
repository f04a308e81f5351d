"""Run directories of batch jobs (evaluation suites, dissection): one atomic, resumable layout.

Layout::

    run.json              the run record: the job's configuration (compared when the run is continued),
                          the software versions and the seed
    parts/<name><suffix>  one file per finished part, written atomically (temporary file + fsync +
                          rename): a part's file existing is the mark that the part is done
    ...                   the job's own outputs, assembled from the parts in part order (also atomic)

A run killed at any moment leaves only whole part files (a half-written one is a ``.tmp`` that is
ignored, and removed when the run is continued), so continuing computes exactly the missing parts and
the assembled outputs are identical to an uninterrupted run: no duplicated or missing rows.

Parts hold named arrays (:data:`ARRAY_PARTS`, ``.npz``) or a JSON record (:data:`RECORD_PARTS`).
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import platform
import shutil
import sys
import zipfile
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
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


def _npz_arrays(data: bytes) -> dict[str, np.ndarray]:
    with np.load(io.BytesIO(data), allow_pickle=False) as z:
        return {k: z[k] for k in z.files}


def _json_bytes(record: Any) -> bytes:
    return (json.dumps(record, indent=1) + "\n").encode("utf-8")


@dataclass(frozen=True)
class PartFormat:
    """How the parts of a run are stored: file suffix and the (de)serialisation of one part."""

    suffix: str
    encode: Callable[[Any], bytes]
    decode: Callable[[bytes], Any]


#: parts holding named arrays (evaluation batches): ``dict[str, np.ndarray]`` <-> deterministic ``.npz``
ARRAY_PARTS = PartFormat(".npz", npz_bytes, _npz_arrays)
#: parts holding one JSON record (dissection unit ranges)
RECORD_PARTS = PartFormat(".json", _json_bytes, json.loads)


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


def _canonical(config: Mapping[str, Any]) -> dict[str, Any]:
    """``config`` as run.json gives it back (tuples become lists, ...)."""
    return dict(json.loads(json.dumps(config)))


class RunDir:
    """The output directory of one run of a batch job, with its per-part store."""

    def __init__(self, root: Path, config: dict[str, Any], parts: PartFormat = ARRAY_PARTS) -> None:
        self.root = root
        self.config = config
        self.format = parts
        self.parts = root / PARTS

    # ------------------------------------------------------------------ opening
    @classmethod
    def open(
        cls,
        root: str | os.PathLike[str],
        config: dict[str, Any],
        *,
        resume: bool = False,
        overwrite: bool = False,
        parts: PartFormat = ARRAY_PARTS,
    ) -> RunDir:
        """Create a run directory, or continue the run in it with ``resume`` (same configuration
        required; temporary files of an interrupted write are removed).

        An existing run without ``resume`` is an error unless ``overwrite`` (which empties it); so is a
        non-empty folder that holds no run.
        """
        path = Path(root)
        if (path / RUN_FILE).exists():
            if resume:
                run = cls(path, config, parts)
                run._check_config("use another --out or --overwrite")
                run._clean_tmp()
                return run
            if not overwrite:
                raise InvalidArgumentError(
                    f"{path} already holds a run; pass --resume to continue it or --overwrite to replace it"
                )
            shutil.rmtree(path)
        elif path.exists() and any(path.iterdir()) and not overwrite:
            raise InvalidArgumentError(f"{path} exists and is not empty; choose another --out or --overwrite")
        run = cls(path, config, parts)
        run._write_record()
        return run

    @classmethod
    def open_shared(
        cls, root: str | os.PathLike[str], config: dict[str, Any], *, parts: PartFormat = ARRAY_PARTS
    ) -> RunDir:
        """Open a run that several processes fill at once (``--shard K/N``, Ray tasks, worker
        processes): create it if missing, else require the same configuration. Never empties it and
        never removes temporary files (they may be another shard's writes in progress)."""
        run = cls(Path(root), config, parts)
        if not (run.root / RUN_FILE).exists():
            run._write_record()
        run._check_config("shards of one job must agree")
        return run

    @classmethod
    def existing(cls, root: str | os.PathLike[str], *, parts: PartFormat = ARRAY_PARTS) -> RunDir:
        """The run already in ``root`` with the configuration its run.json records (a worker
        computing its parts, a merge)."""
        path = Path(root)
        if not (path / RUN_FILE).is_file():
            raise InvalidArgumentError(f"{path} holds no run (no {RUN_FILE})")
        return cls(path, read_record(path)["config"], parts)

    def _write_record(self) -> None:
        record: dict[str, Any] = {"config": self.config, "versions": versions()}
        if "seed" in self.config:
            record["seed"] = self.config["seed"]
        self.root.mkdir(parents=True, exist_ok=True)
        atomic_write_text(
            self.root / RUN_FILE, json.dumps(record, indent=2, sort_keys=True, allow_nan=True) + "\n"
        )

    def _check_config(self, advice: str) -> None:
        old = read_record(self.root).get("config", {})
        new = _canonical(self.config)
        if old != new:
            diff = sorted(k for k in {*old, *new} if old.get(k) != new.get(k))
            raise InvalidArgumentError(
                f"{self.root} holds a run with a different configuration (differs in: {', '.join(diff)}); "
                f"{advice}"
            )

    def _clean_tmp(self) -> None:
        for tmp in self.root.rglob(".*.tmp"):
            with contextlib.suppress(OSError):
                tmp.unlink()

    # ------------------------------------------------------------------ parts
    def part_path(self, name: str) -> Path:
        return self.parts / f"{name}{self.format.suffix}"

    def has_part(self, name: str) -> bool:
        return self.part_path(name).exists()

    def missing_parts(self, names: Iterable[str]) -> list[str]:
        """The parts of ``names`` not done yet, in the given order."""
        return [name for name in names if not self.has_part(name)]

    def save_part(self, name: str, part: Any) -> None:
        atomic_write_bytes(self.part_path(name), self.format.encode(part))

    def load_part(self, name: str) -> Any:
        return self.format.decode(self.part_path(name).read_bytes())

    def path(self, *names: str) -> Path:
        """A file of the run's outputs (its folder is created)."""
        p = self.root.joinpath(*names)
        p.parent.mkdir(parents=True, exist_ok=True)
        return p


def read_record(root: str | os.PathLike[str]) -> dict[str, Any]:
    """The run record (run.json) of the run in ``root``; an empty record when there is none."""
    path = Path(root) / RUN_FILE
    return dict(json.loads(path.read_text())) if path.is_file() else {}
