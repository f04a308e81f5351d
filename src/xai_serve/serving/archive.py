"""``xai archive``: checkpoint directory -> ``model_store/NAME.mar`` (torch-model-archiver).

The archive holds the handler shim (``handlers/xai_handler.py``), the state_dict
(``weights.pt``), the model card (``model.json``: registry name, kwargs, input shape, mean/std,
labels), ``index_to_name.json`` and ``model-config.yaml`` (batch size, max batch delay, workers,
response timeout and, under ``xai:``, the weights' sha256 that the handler checks at load time).
The model code itself is the installed ``xai_serve.models`` registry, named by the card.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import yaml

from xai_serve.errors import CheckpointError, InvalidArgumentError
from xai_serve.serving.handler import CARD_FILE, CONFIG_KEY, sha256_of

REPO = Path(__file__).resolve().parents[3]
HANDLER_SHIM = REPO / "handlers" / "xai_handler.py"
WEIGHTS_NAME = "weights.pt"
WEIGHT_FILES = {"best": "best.pt", "last": "weights.pt"}

# used when the package is installed without the repository's handlers/ directory
SHIM_TEXT = '''"""TorchServe entry file packed into every xai-serve ``.mar`` (``xai archive``).

TorchServe imports this file by its basename and instantiates the single class defined here; all
logic lives in the installed ``xai_serve`` package.
"""

from xai_serve.serving.handler import XaiHandler


class XaiModelHandler(XaiHandler):
    """Predictions and explanations for a model archived by ``xai archive``."""
'''


@dataclass
class ArchiveOptions:
    batch_size: int = 8
    max_batch_delay_ms: int = 20
    workers: int = 1
    response_timeout_s: int = 120
    default_methods: list[str] = field(default_factory=lambda: ["gradient"])
    max_pixels: int = 4096 * 4096
    torch_threads: int = 0  # 0: torch's default
    version: str = "1.0"


def model_config(options: ArchiveOptions, weights_sha256: str) -> dict:
    return {
        "minWorkers": options.workers,
        "maxWorkers": options.workers,
        "batchSize": options.batch_size,
        "maxBatchDelay": options.max_batch_delay_ms,
        "responseTimeout": options.response_timeout_s,
        CONFIG_KEY: {
            "weights_sha256": weights_sha256,
            "default_methods": list(options.default_methods),
            "max_pixels": options.max_pixels,
            "torch_threads": options.torch_threads,
        },
    }


def _archiver() -> list[str]:
    exe = Path(sys.executable).parent / "torch-model-archiver"
    if exe.exists():
        return [str(exe)]
    found = shutil.which("torch-model-archiver")
    if found is None:
        raise CheckpointError(
            "torch-model-archiver is not installed (pip install torch-model-archiver==0.12.0)"
        )
    return [found]


def build_archive(
    checkpoint: str | Path,
    name: str,
    *,
    store: str | Path = "model_store",
    which: Literal["best", "last"] = "best",
    options: ArchiveOptions | None = None,
) -> Path:
    """Write ``store/NAME.mar`` from ``checkpoint`` and return its path."""
    from xai_serve.models import ModelCard

    options = options or ArchiveOptions()
    if not name or not name.replace("_", "").replace("-", "").isalnum():
        raise InvalidArgumentError(f"model name {name!r} must be letters, digits, '_' or '-'")
    ckpt = Path(checkpoint)
    card = ModelCard.load(ckpt / CARD_FILE)  # validates the card
    weights = ckpt / WEIGHT_FILES[which]
    if not weights.is_file():
        raise CheckpointError(f"{ckpt} has no {weights.name} (which={which!r})")
    store = Path(store)
    store.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="xai-archive-") as tmp:
        work = Path(tmp)
        shutil.copyfile(weights, work / WEIGHTS_NAME)
        card.save(work / CARD_FILE)
        (work / "index_to_name.json").write_text(
            json.dumps({str(i): lbl for i, lbl in enumerate(card.labels)})
        )
        (work / "model-config.yaml").write_text(
            yaml.safe_dump(model_config(options, sha256_of(work / WEIGHTS_NAME)), sort_keys=False)
        )
        handler = work / "xai_handler.py"
        handler.write_text(HANDLER_SHIM.read_text() if HANDLER_SHIM.is_file() else SHIM_TEXT)
        cmd = [
            *_archiver(),
            "--model-name",
            name,
            "--version",
            options.version,
            "--serialized-file",
            str(work / WEIGHTS_NAME),
            "--handler",
            str(handler),
            "--extra-files",
            f"{work / CARD_FILE},{work / 'index_to_name.json'}",
            "--config-file",
            str(work / "model-config.yaml"),
            "--export-path",
            str(work),
            "--force",
        ]
        done = subprocess.run(cmd, capture_output=True, text=True, check=False)
        if done.returncode != 0:
            raise CheckpointError(
                f"torch-model-archiver failed: {done.stderr.strip() or done.stdout.strip()}"
            )
        target = store / f"{name}.mar"
        tmp_target = store / f".{name}.mar.tmp"
        shutil.copyfile(work / f"{name}.mar", tmp_target)
        tmp_target.replace(target)  # atomic
    return target
