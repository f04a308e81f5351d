"""One served model from its unpacked archive: the :class:`~xai_serve.serving.service.ExplainService`
that both engines run (TorchServe's handler, KServe's model server), built from the archive's files
(``model.json``, the weights, ``model-config.yaml``'s ``xai`` section, credentials, dissection).

:func:`open_archive` unpacks a ``.mar`` (a zip) for an engine that does not do it itself; the handler
gets its directory from TorchServe.
"""

from __future__ import annotations

import contextlib
import json
import logging
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
import yaml

from xai_serve.errors import CheckpointError
from xai_serve.hashing import file_sha256
from xai_serve.serving.credentials import ServedCredentials
from xai_serve.serving.explanation_cache import explanation_cache
from xai_serve.serving.inputs import Limits
from xai_serve.serving.limits import CostLimits
from xai_serve.serving.live_monitor import LiveMonitor, LiveSink, MonitorConfig
from xai_serve.serving.observer import Observer
from xai_serve.serving.ports import RegistryEngine
from xai_serve.serving.service import ExplainService
from xai_serve.serving.threads import forward_macs, worker_threads

log = logging.getLogger(__name__)

CARD_FILE = "model.json"
CONFIG_KEY = "xai"  # our section of model-config.yaml
MANIFEST = "MAR-INF/MANIFEST.json"


@dataclass(frozen=True)
class UnpackedArchive:
    name: str
    model_dir: Path
    serialized_file: str
    config: dict[str, Any]  # model-config.yaml (TorchServe's keys and ours under "xai")

    @property
    def xai_config(self) -> dict[str, Any]:
        return dict(self.config.get(CONFIG_KEY) or {})


def open_archive(mar: Path, dest: Path) -> UnpackedArchive:
    """Unpack ``mar`` into ``dest`` (a fresh directory) and read its manifest and model config."""
    try:
        with zipfile.ZipFile(mar) as z:
            z.extractall(dest)
        manifest = json.loads((dest / MANIFEST).read_text())
        model = manifest["model"]
        config_file = model.get("configFile")
        config = yaml.safe_load((dest / config_file).read_text()) if config_file else {}
    except (OSError, KeyError, ValueError, zipfile.BadZipFile, yaml.YAMLError) as exc:
        raise CheckpointError(f"{mar}: not a readable model archive ({exc})") from exc
    return UnpackedArchive(
        model.get("modelName", mar.stem), dest, model["serializedFile"], dict(config or {})
    )


def load_served_model(model_dir: Path, serialized_file: str, xai_config: dict[str, Any]) -> tuple[Any, Any]:
    """Rebuild the model from ``model.json`` + the state_dict, checking the weights' sha256."""
    from xai_serve.models import ModelCard, build_from_card, canonicalise, load_state_dict_file

    card = ModelCard.load(model_dir / CARD_FILE)
    weights = model_dir / serialized_file
    expected = xai_config.get("weights_sha256")
    if expected and file_sha256(weights) != expected:
        raise CheckpointError(f"{weights.name}: sha256 differs from the archive's model-config.yaml")
    model = build_from_card(card, model_dir)  # a registry model, or the archived model file
    model.load_state_dict(load_state_dict_file(weights))
    canonicalise(model)
    return model.eval(), card


def _model_macs(model: Any, card: Any) -> int | None:
    """Multiply-adds per image (the worker's thread policy: :mod:`xai_serve.serving.threads`)."""
    try:
        macs = forward_macs(model, card.input_shape)
    except Exception as exc:  # a model the probe cannot run: the light-model default
        log.warning("could not measure the model's cost per image (%s); thread policy of a light model", exc)
        return None
    log.info("model cost: %.1f million multiply-adds per image", macs / 1e6)
    return macs


def build_service(
    name: str,
    model_dir: Path,
    serialized_file: str,
    xai_config: dict[str, Any],
    observer: Observer | None,
    live_sink: LiveSink | None = None,
) -> tuple[ExplainService, list[str]]:
    """The service of one unpacked archive and its default methods; sets torch's thread counts.
    With the archive's ``monitor_rate`` above 0 the service samples its answers for the live
    credentials (:mod:`xai_serve.serving.live_monitor`), published through ``live_sink`` when given."""
    from xai_serve.dissection.evidence import load_served as load_dissection

    # one batch at a time: inter-op threads would only compete with the frontend for cores
    with contextlib.suppress(RuntimeError):  # already set, or parallel work already ran
        torch.set_num_interop_threads(1)
    model, card = load_served_model(model_dir, serialized_file, xai_config)
    threads = int(xai_config.get("torch_threads", 0) or 0) or worker_threads(_model_macs(model, card))
    torch.set_num_threads(threads)
    limits = Limits(
        max_pixels=int(xai_config.get("max_pixels", Limits.max_pixels)),
        max_bytes=int(xai_config.get("max_bytes", Limits.max_bytes)),
    )
    credentials = ServedCredentials.load(model_dir, xai_config, xai_config.get("weights_sha256"))
    cost_limits = CostLimits.from_config(xai_config)
    engine = RegistryEngine()
    monitor = LiveMonitor(
        name,
        model,
        card,
        engine=engine,
        methods=engine.methods(),
        credentials=credentials.doc,
        cost_limits=cost_limits,
        config=MonitorConfig.from_config(xai_config),
        sink=live_sink,
    )
    service = ExplainService(
        name,
        model,
        card,
        limits=limits,
        observer=observer,
        credentials=credentials,
        cost_limits=cost_limits,
        dissection=load_dissection(model_dir, model),
        monitor=monitor if monitor.enabled else None,
        cache=explanation_cache(xai_config),
    )
    return service, list(xai_config.get("default_methods") or ["gradient"])


def describe_service(service: ExplainService, default_methods: list[str]) -> dict[str, Any]:
    """The model's description (the client's ``describe``): the model card, the methods served with their
    full parameter specs (type, default, choices, bounds, doc), the default methods, the cost limits,
    the archive's credentials and the live credentials (``None`` when the archive does not monitor)."""
    return {
        "card": service.card.to_dict(),
        "methods": {name: spec.describe() for name, spec in service.methods.items()},
        "default_methods": default_methods,
        "limits": service.cost_limits.to_config(),
        "credentials": service.credentials.describe(),
        "live": service.monitor.snapshot() if service.monitor else None,
    }
