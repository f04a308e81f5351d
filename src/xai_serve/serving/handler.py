"""The TorchServe handler base class. The ``.mar`` ships a one-class shim (``handlers/xai_handler.py``)
that subclasses :class:`XaiHandler`; everything else is here and in the transport-neutral service.

Per batch: each request is parsed on its own (gRPC input key ``xai_request``; HTTP protobuf, JSON or
raw image body), so method, target and output form are per request, unlike TorchServe's stock
handler, which reads them from request 0. The service answers each request; the handler encodes
each answer for its transport and never lets an exception out (one failing request never fails
the batch, and a worker is never restarted because of a request).
"""

from __future__ import annotations

import contextlib
import json
import logging
import sys
import traceback
from pathlib import Path
from typing import Any

import torch
from xai_client.api.v1 import explain_pb2 as pb

from xai_serve.errors import CheckpointError, InvalidInputError, XaiError
from xai_serve.hashing import file_sha256
from xai_serve.serving.credentials import ServedCredentials
from xai_serve.serving.encode import Encoded, encode_grpc, encode_http
from xai_serve.serving.inputs import Limits
from xai_serve.serving.limits import CostLimits
from xai_serve.serving.metrics import TorchServeObserver
from xai_serve.serving.observer import status_of
from xai_serve.serving.service import ExplainService
from xai_serve.serving.threads import forward_macs, worker_threads
from xai_serve.serving.wire import GRPC_INPUT_KEY, parse_payload

log = logging.getLogger(__name__)

CARD_FILE = "model.json"
CONFIG_KEY = "xai"  # our section of model-config.yaml


def _header(headers: dict[str, Any], name: str) -> str | None:
    name = name.lower()
    for k, v in headers.items():
        if isinstance(k, str) and k.lower() == name and isinstance(v, str):
            return v
    return None


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


def in_torchserve_worker() -> bool:
    """Whether this process is TorchServe's Python worker (``ts/model_service_worker.py`` as __main__)."""
    main = sys.modules.get("__main__")
    return Path(str(getattr(main, "__file__", "") or "")).name == "model_service_worker.py"


def quiet_worker_logging() -> None:
    """Drop the INFO lines TorchServe's worker writes for every batch, keep its metrics.

    The worker logs through the root logger to stdout, which the frontend reads line by line and
    writes to model_log.log: ``Backend received inference at: ...`` once per batch (logging, this
    line and the metric lines, was 5.8 % of a served worker's py-spy samples at B=1 predictions).
    Metric lines (``[METRICS]``, from ``ts.metrics`` and ``ts.service``) must still reach the
    frontend, which turns them into Prometheus metrics, and ours (``xai_serve``) stay at INFO;
    warnings and tracebacks are unaffected."""
    logging.getLogger().setLevel(logging.WARNING)
    for name in ("ts.metrics", "ts.service", "xai_serve"):
        logging.getLogger(name).setLevel(logging.INFO)


class XaiHandler:
    """TorchServe entry point (``initialize`` once, ``handle`` per batch)."""

    def __init__(self) -> None:
        self.initialized = False
        self.service: ExplainService | None = None
        self.default_methods: list[str] = []
        self.observer = TorchServeObserver(None, "")

    # -------------------------------------------------------------- lifecycle

    def initialize(self, context: Any) -> None:
        props = context.system_properties
        model_dir = Path(props["model_dir"])
        config = dict(getattr(context, "model_yaml_config", None) or {})
        xai_config = dict(config.get(CONFIG_KEY) or {})
        # one batch at a time: inter-op threads would only compete with the frontend for cores
        with contextlib.suppress(RuntimeError):  # already set, or parallel work already ran
            torch.set_num_interop_threads(1)
        serialized = context.manifest["model"]["serializedFile"]
        model, card = load_served_model(model_dir, serialized, xai_config)
        threads = int(xai_config.get("torch_threads", 0) or 0) or worker_threads(_model_macs(model, card))
        torch.set_num_threads(threads)
        limits = Limits(
            max_pixels=int(xai_config.get("max_pixels", Limits.max_pixels)),
            max_bytes=int(xai_config.get("max_bytes", Limits.max_bytes)),
        )
        self.default_methods = list(xai_config.get("default_methods") or ["gradient"])
        self.observer = TorchServeObserver(context.metrics, context.model_name)
        credentials = ServedCredentials.load(model_dir, xai_config, xai_config.get("weights_sha256"))
        from xai_serve.dissection.evidence import load_served as load_dissection

        self.service = ExplainService(
            context.model_name,
            model,
            card,
            limits=limits,
            observer=self.observer,
            credentials=credentials,
            cost_limits=CostLimits.from_config(xai_config),
            dissection=load_dissection(model_dir, model),
        )
        self.initialized = True
        log.info(
            "xai handler ready: model %s (%s), methods %s",
            context.model_name,
            card.model,
            ", ".join(sorted(self.service.methods)),
        )
        if in_torchserve_worker():  # not in tests or benchmarks that initialise a handler in-process
            quiet_worker_logging()

    # -------------------------------------------------------------- per batch

    def handle(self, data: list[dict[str, Any]], context: Any) -> list[bytes]:
        n = len(data)
        grpc = [False] * n
        accepts: list[str | None] = [None] * n
        try:
            if n and context.get_request_header(0, "describe") == "True":
                return [self.describe().encode("utf-8")] + [b""] * (n - 1)
            assert self.service is not None, "handler used before initialize()"
            self.observer.metrics = context.metrics
            items: list[pb.ExplainRequest | BaseException] = []
            for i, row in enumerate(data):
                headers = context.get_all_request_header(i) or {}
                grpc[i] = GRPC_INPUT_KEY in row
                accepts[i] = _header(headers, "accept")
                items.append(self._parse(row, headers))
            responses = self.service.handle(items)
        except Exception as exc:
            log.error("handler failed: %s", traceback.format_exc())
            err = pb.ExplainResponse(status=status_of(exc))
            responses = [err] * n
        out = []
        for i, resp in enumerate(responses):
            enc = self._encode(resp, grpc[i], accepts[i])
            try:
                context.set_response_content_type(i, enc.content_type)
                if not grpc[i] and enc.http_status != 200:
                    context.set_response_status(enc.http_status, enc.phrase, i)
            except Exception:  # a context without per-request headers (e.g. some test doubles)
                log.debug("could not set response headers: %s", traceback.format_exc())
            out.append(enc.body)
        return out

    def _parse(self, row: dict[str, Any], headers: dict[str, Any]) -> pb.ExplainRequest | BaseException:
        try:
            part = headers.get("body") if isinstance(headers.get("body"), dict) else {}
            ctype = (part or {}).get("content-type") or _header(headers, "content-type")
            req = parse_payload(row, ctype, headers)
            if headers.get("explain") == "True" and not req.methods:  # HTTP /explanations/NAME
                for m in self.default_methods:
                    req.methods.add(name=m)
            accept = _header(headers, "accept") or ""
            if "image/png" in accept and req.output == pb.OUTPUT_FORM_UNSPECIFIED:
                req.output = pb.OUTPUT_FORM_PNG
            return req
        except XaiError as exc:
            return exc
        except Exception as exc:
            return InvalidInputError(f"could not read the request: {type(exc).__name__}: {exc}")

    @staticmethod
    def _encode(resp: pb.ExplainResponse, grpc: bool, accept: str | None) -> Encoded:
        try:
            return encode_grpc(resp) if grpc else encode_http(resp, accept)
        except Exception as exc:
            log.error("encoding failed: %s", traceback.format_exc())
            return encode_grpc(pb.ExplainResponse(status=status_of(exc)))

    def describe(self) -> str:
        """``GET /models/NAME?customized=true``: the model card, the methods served with their full
        parameter specs (type, default, choices, bounds, doc), the default methods and the cost limits."""
        assert self.service is not None
        methods = {name: spec.describe() for name, spec in self.service.methods.items()}
        return json.dumps(
            {
                "card": self.service.card.to_dict(),
                "methods": methods,
                "default_methods": self.default_methods,
                "limits": self.service.cost_limits.to_config(),
                "credentials": self.service.credentials.describe(),
            }
        )
