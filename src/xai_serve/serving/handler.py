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

from xai_client.api.v1 import explain_pb2 as pb

from xai_serve.errors import InvalidInputError, XaiError
from xai_serve.serving.encode import Encoded, encode_grpc, encode_http
from xai_serve.serving.live_metrics import TorchServeLiveSink
from xai_serve.serving.metrics import TorchServeObserver
from xai_serve.serving.observer import status_of
from xai_serve.serving.served import CARD_FILE, CONFIG_KEY, build_service, describe_service, load_served_model

__all__ = ["CARD_FILE", "CONFIG_KEY", "XaiHandler", "load_served_model"]
from xai_serve.serving.service import ExplainService
from xai_serve.serving.streaming import STREAM_NEXT, StreamSender, final_message
from xai_serve.serving.wire import GRPC_INPUT_KEY, parse_payload

log = logging.getLogger(__name__)


def _header(headers: dict[str, Any], name: str) -> str | None:
    name = name.lower()
    for k, v in headers.items():
        if isinstance(k, str) and k.lower() == name and isinstance(v, str):
            return v
    return None


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
        config = dict(getattr(context, "model_yaml_config", None) or {})
        xai_config = dict(config.get(CONFIG_KEY) or {})
        serialized = context.manifest["model"]["serializedFile"]
        self.observer = TorchServeObserver(context.metrics, context.model_name)
        self.service, self.default_methods = build_service(
            context.model_name,
            Path(props["model_dir"]),
            serialized,
            xai_config,
            self.observer,
            live_sink=TorchServeLiveSink(self.observer.emit),
        )
        card = self.service.card
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
        streamed: set[int] = set()
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
            streamed = {
                i for i, it in enumerate(items) if grpc[i] and isinstance(it, pb.ExplainRequest) and it.stream
            }
            sender = StreamSender(context, streamed) if streamed else None
            responses = self.service.handle(items, progress=sender)
        except Exception as exc:
            log.error("handler failed: %s", traceback.format_exc())
            err = pb.ExplainResponse(status=status_of(exc))
            responses = [err] * n
        out = []
        for i, resp in enumerate(responses):
            enc = self._encode(resp, grpc[i], accepts[i])
            if i in streamed:  # the last message of a streamed answer (serving/streaming.py)
                enc = Encoded(final_message(resp), enc.content_type, enc.http_status, enc.phrase)
                with contextlib.suppress(Exception):
                    context.set_response_header(i, STREAM_NEXT, "false")
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
        return json.dumps(describe_service(self.service, self.default_methods))
