"""``xai archive``: checkpoint directory -> ``model_store/NAME.mar`` (torch-model-archiver).

The archive holds the handler shim (``handlers/xai_handler.py``), the state_dict
(``weights.pt``), the model card (``model.json``: registry name, kwargs, input shape, mean/std,
labels), ``index_to_name.json`` and ``model-config.yaml`` (batch size, max batch delay, workers,
response timeout and, under ``xai:``, the weights' sha256 that the handler checks at load time and the
per-request cost limits of :mod:`xai_serve.serving.limits`).
With ``ArchiveOptions.credentials`` it also holds ``credentials.json`` (``xai certify``), whose
sha256 is recorded beside the weights' and checked by the worker at load time; the credentials must
have been measured on the archived weights. ``refuse_failed_methods`` makes the worker refuse
(FAILED_PRECONDITION) the methods that failed the credentials' sanity check.
The model code itself is the installed ``xai_serve.models`` registry, named by the card, or the user's
model file the card names (``xai import --model-file``), packed beside it.
``monitor`` (``xai archive --monitor-rate R``) turns on live credentials (``serving/live_monitor.py``).
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import yaml

from xai_serve.atomic import atomic_copy
from xai_serve.errors import CheckpointError, InvalidArgumentError
from xai_serve.evaluation.credentials import FILE_NAME as CREDENTIALS_NAME
from xai_serve.hashing import file_sha256
from xai_serve.serving.credentials import REFUSE_KEY, SHA_KEY
from xai_serve.serving.handler import CARD_FILE, CONFIG_KEY
from xai_serve.serving.limits import CostLimits
from xai_serve.serving.live_monitor import MonitorConfig

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
    max_batch_delay_ms: int = 2  # a lone request waits this long; a busy worker batches what queued meanwhile
    workers: int = 1
    response_timeout_s: int = 120
    default_methods: list[str] = field(default_factory=lambda: ["gradient"])
    max_pixels: int = 4096 * 4096
    torch_threads: int = 0  # 0: torch's default
    version: str = "1.0"
    limits: CostLimits = field(default_factory=CostLimits)  # per-request cost limits (serving/limits.py)
    credentials: str | Path | None = None  # credentials.json written by `xai certify`
    refuse_failed_methods: bool = False  # refuse methods that failed the sanity check
    decompose: str | Path | None = None  # index file: serve the decomposed final layer
    onnx: bool = False  # also pack model.onnx (dynamic batch) for users serving predictions elsewhere
    dissection: str | Path | None = None  # results.csv of `xai dissect`: concept-labelled Heatmap.units
    monitor: MonitorConfig = field(default_factory=MonitorConfig)  # live credentials (live_monitor.py)
    cache_mib: float = 16.0  # explanation cache per worker (serving/explanation_cache.py); 0: none


ONNX_NAME = "model.onnx"


def model_config(options: ArchiveOptions, weights_sha256: str, credentials_sha256: str | None = None) -> dict:
    config: dict[str, Any] = {
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
            "cache_mib": options.cache_mib,
            **options.limits.to_config(),
        },
    }
    if options.monitor.rate > 0:  # live credentials: off unless asked for
        config[CONFIG_KEY].update(options.monitor.to_config())
    if credentials_sha256:
        config[CONFIG_KEY][SHA_KEY] = credentials_sha256
        config[CONFIG_KEY][REFUSE_KEY] = bool(options.refuse_failed_methods)
    return config


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


def _add_credentials(options: ArchiveOptions, work: Path, weights_sha256: str) -> str | None:
    """Copy the validated credentials into ``work``; return their sha256 (None without any)."""
    from xai_serve.evaluation import credentials as cred

    if options.credentials is None:
        if options.refuse_failed_methods:
            raise InvalidArgumentError(
                "refusing failed methods needs credentials (--credentials or --certify)"
            )
        return None
    doc = cred.load(options.credentials)
    if doc["checkpoint_sha256"] != weights_sha256:
        raise CheckpointError(
            f"{options.credentials} was measured on other weights (sha256 "
            f"{doc['checkpoint_sha256'][:12]}...) than the ones archived ({weights_sha256[:12]}...); "
            "run `xai certify` on this checkpoint"
        )
    shutil.copyfile(options.credentials, work / CREDENTIALS_NAME)
    return file_sha256(work / CREDENTIALS_NAME)


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
    if options.decompose is not None:  # the card then names the decomposed model form (same weights)
        from xai_serve.decomposition.cards import decomposed_card

        card = decomposed_card(card, options.decompose)
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
        extra = [work / CARD_FILE, work / "index_to_name.json"]
        if card.model_file:  # a user's model file (xai import --model-file): the worker imports it from here
            shutil.copyfile(ckpt / card.model_file, work / card.model_file)
            extra.append(work / card.model_file)
        if options.onnx:
            from xai_serve.export.onnx_export import export_card_weights

            extra.append(export_card_weights(card, work / WEIGHTS_NAME, work / ONNX_NAME))
        creds_sha = _add_credentials(options, work, file_sha256(work / WEIGHTS_NAME))
        if creds_sha:
            extra.append(work / CREDENTIALS_NAME)
        if options.dissection is not None:  # validated against the model's layers, packed as dissection.csv
            from xai_serve.dissection.evidence import attach
            from xai_serve.models import build_from_card

            extra.append(attach(options.dissection, work, build_from_card(card, ckpt)))
        (work / "model-config.yaml").write_text(
            yaml.safe_dump(
                model_config(options, file_sha256(work / WEIGHTS_NAME), creds_sha), sort_keys=False
            )
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
            ",".join(str(p) for p in extra),
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
        atomic_copy(work / f"{name}.mar", target)
    return target
