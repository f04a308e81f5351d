"""The console's one way to the model server: an :class:`xai_client.Client` built from the command line's
options, and what the pages need from it (models with cards, methods, credentials and status; health;
explanations). The tokens stay here, on the console's side: nothing the browser receives carries them."""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from xai_client import Client
from xai_client.client import DEFAULT_ADDRESS
from xai_client.errors import XaiClientError
from xai_client.oip_transport import rest_address_of, rest_url

from xai_serve.console.command_line import reproduce
from xai_serve.console.panels import explanation_dict

ENGINES = {"torchserve": None, "kserve": "v2"}  # engine -> the Client protocol it needs (None: --protocol)
# engine -> its --protocol when none is given: the kserve engine's REST port answers everything (models,
# describe, infer) on one address, its gRPC port only inference
DEFAULT_PROTOCOL = {"torchserve": "grpc", "kserve": "http"}


@dataclass(frozen=True)
class ServerOptions:
    """The client CLI's options: ``address`` (inference), ``management_address`` (default: its port + 1),
    ``protocol`` (grpc | http), ``engine`` (torchserve | kserve: KServe's Open Inference Protocol v2,
    ``Client(protocol="v2")``), ``key_file``, ``token``, ``timeout`` per call in seconds.

    With ``engine="kserve"``, ``protocol`` picks the v2 transport: ``http`` (the default) with ``address``
    ``HOST:HTTP_PORT`` (or ``http://HOST:PORT``), or ``grpc`` with ``address`` ``HOST:GRPC_PORT`` and the
    REST port as ``management_address`` (default: the gRPC port - 1, KServe's 8080/8081 pair)."""

    address: str | None = None
    management_address: str | None = None
    protocol: str | None = None  # None: the engine's DEFAULT_PROTOCOL
    engine: str = "torchserve"
    key_file: str | None = None
    token: str | None = None
    timeout: float = 120.0

    @property
    def client_protocol(self) -> str:
        if self.engine not in ENGINES:
            raise ValueError(f"engine must be one of {', '.join(ENGINES)}, not {self.engine!r}")
        return ENGINES[self.engine] or self.transport

    @property
    def transport(self) -> str:
        """grpc | http: the wire under the engine's protocol."""
        protocol = self.protocol or DEFAULT_PROTOCOL.get(self.engine, "grpc")
        if protocol not in ("grpc", "http"):
            raise ValueError(f"protocol must be grpc or http, not {protocol!r}")
        return protocol

    @property
    def client_address(self) -> str | None:
        """``address`` as the Client takes it (the v2 client tells REST from gRPC by the URL scheme)."""
        if self.client_protocol == "v2" and self.transport == "http":
            return rest_url(self.address) if self.address else rest_address_of(DEFAULT_ADDRESS["v2"])
        return self.address


def make_client(options: ServerOptions, *, timeout: float | None = None, retries: int = 1) -> Client:
    """A Client for ``options``; ``--engine kserve`` needs a client that speaks ``protocol="v2"``."""
    address, protocol = options.client_address, options.client_protocol  # ValueError: a bad engine/protocol
    try:
        return Client(
            address,
            protocol,
            token=options.token,
            key_file=Path(options.key_file) if options.key_file else None,
            management_address=options.management_address,
            timeout=options.timeout if timeout is None else timeout,
            retries=retries,
        )
    except ValueError as exc:
        if options.engine == "kserve":
            raise ValueError(
                f"--engine kserve needs xai_client.Client(protocol='v2') (KServe's Open Inference "
                f"Protocol), which this client does not have: {exc}"
            ) from exc
        raise


class Backend:
    """Everything the console's API asks of the model server."""

    def __init__(self, options: ServerOptions) -> None:
        self.options = options
        self.client = make_client(options)
        self._probe = make_client(options, timeout=3.0, retries=0)  # health: answer fast when it is gone

    def close(self) -> None:
        self.client.close()
        self._probe.close()

    def health(self) -> dict[str, Any]:
        try:
            return {"up": True, "status": self._probe.health()}
        except XaiClientError as exc:
            return {"up": False, "status": exc.code, "message": exc.message}

    def models(self) -> list[dict[str, Any]]:
        """Every served model: status, workers, card, methods (name, signed, doc), credentials and, when the
        client can tell it (``Client.live_credentials``), the live credential status."""
        out = []
        for info in self.client.models():
            described = self.client.describe(info.name)
            entry = dataclasses.asdict(info)
            entry["card"] = described.get("card") or {}
            entry["methods"] = sorted(described.get("methods") or {})
            entry["default_methods"] = list(described.get("default_methods") or [])
            summary = (described.get("credentials") or {}).get("summary") or {}
            entry["credentials"] = summary
            live = getattr(self.client, "live_credentials", None)
            if callable(live):
                try:
                    entry["live"] = _plain(live(info.name))
                except XaiClientError as exc:
                    entry["live"] = {"error": exc.message}
            out.append(entry)
        return out

    def methods(self, model: str) -> dict[str, Any]:
        """The method specs ``model`` serves (``Client.methods``), as JSON."""
        return {name: _plain(info) for name, info in self.client.methods(model).items()}

    def explain(
        self,
        model: str,
        image_bytes: bytes,
        pixels: np.ndarray,
        methods: Sequence[str],
        params: Mapping[str, Mapping[str, str]],
        target: str | None,
        *,
        top_k: int = 5,
    ) -> dict[str, Any]:
        """The explanation of ``methods`` (with ``params``) for ``target`` as the page's JSON, plus the
        ``xai-client`` command line that reproduces it and the console's own time."""
        tic = time.perf_counter()
        request = {m: dict(params.get(m) or {}) for m in methods}
        e = self.client.explain(model, image_bytes, request, target=target or None, top_k=top_k)
        answer = explanation_dict(e, pixels)
        for h in answer["heatmaps"]:
            h["params"] = request.get(h["method"], {})
        o = self.options
        answer["command"] = reproduce(
            model=model,
            methods=list(methods),
            params=request,
            target=target or None,
            address=self.client.address,
            management_address=o.management_address,
            protocol=o.client_protocol,
            key_file=o.key_file,
        )
        answer["console_ms"] = (time.perf_counter() - tic) * 1e3
        return answer


def _plain(value: Any) -> Any:
    """Dataclasses (and mappings of them) as JSON-ready dicts."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: _plain(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return value
