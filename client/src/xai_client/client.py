"""``Client``: predictions and explanations from an xai-serve (TorchServe) server."""

from __future__ import annotations

import json
import random
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

from xai_client.api.v1 import explain_pb2 as pb
from xai_client.errors import InvalidArgument, Unauthenticated, Unavailable, error_for_code
from xai_client.live import LiveCredentials, live_from_describe
from xai_client.methods import MethodInfo, methods_from_describe
from xai_client.oip_transport import v2_transport
from xai_client.requests import ImageLike, Methods, TargetLike, build_request
from xai_client.results import (
    Credential,
    Explanation,
    Prediction,
    credential_from_dict,
    explanation_from_proto,
)
from xai_client.streaming import Progress, read_stream
from xai_client.tokens import resolve_tokens
from xai_client.transport import GrpcTransport, HttpTransport, Transport

T = TypeVar("T")

# "v2": the Open Inference Protocol of the kserve engine, gRPC for HOST:PORT, REST for http://HOST:PORT
DEFAULT_ADDRESS = {"grpc": "127.0.0.1:7070", "http": "127.0.0.1:8080", "v2": "127.0.0.1:8081"}


@dataclass(frozen=True)
class ModelInfo:
    name: str
    version: str
    status: str  # READY when every worker is up
    workers: int
    batch_size: int
    max_batch_delay_ms: int


def _management_address(address: str) -> str:
    """TorchServe's convention: the management port is the inference port + 1."""
    scheme, sep, rest = address.rpartition("://")
    host, _, port = rest.rpartition(":")
    return f"{scheme}{sep}{host}:{int(port) + 1}"


class Client:
    """Talks to a served model over ``protocol="grpc"`` (TorchServe's Predictions RPC) or ``"http"``, or
    to the kserve engine over ``"v2"`` (the Open Inference Protocol: :mod:`xai_client.oip_transport`).

    ``token`` is the inference key (default: ``$XAI_SERVE_TOKEN`` or the key file ``xai serve``
    wrote); ``management_address`` is where the model list and the describe call go (default: the
    inference address with its port + 1, TorchServe's convention: 7070 -> 7071, 8080 -> 8081; give it
    when the management API listens elsewhere); ``timeout`` is per call in seconds; ``retries`` is how
    many times an :class:`~xai_client.errors.Unavailable` failure is retried, with exponential backoff
    and jitter. Every other failure raises at once, as the typed error of the Status the server returned.
    On :class:`~xai_client.errors.Unauthenticated` the tokens are re-read once (a restarted server
    writes new ones to its key file) and the call is repeated if they changed.
    """

    def __init__(
        self,
        address: str | None = None,
        protocol: str = "grpc",
        *,
        token: str | None = None,
        management_token: str | None = None,
        key_file: str | Path | None = None,
        management_address: str | None = None,
        timeout: float = 30.0,
        retries: int = 2,
        backoff: float = 0.2,
    ) -> None:
        if protocol not in DEFAULT_ADDRESS:
            raise ValueError(f"protocol must be 'grpc', 'http' or 'v2', not {protocol!r}")
        self.protocol = protocol
        self.address = address or DEFAULT_ADDRESS[protocol]
        self.timeout = timeout
        self.retries = retries
        self.backoff = backoff
        tokens = resolve_tokens(token, management_token=management_token, key_file=key_file)
        maddr: str | None = management_address
        cls: Callable[..., Transport] = v2_transport  # v2 picks its own REST address for list/describe
        if protocol != "v2":
            maddr = management_address or _management_address(self.address)
            cls = GrpcTransport if protocol == "grpc" else HttpTransport
        self._transport: Transport = cls(self.address, maddr, tokens.inference, tokens.management)
        # a restarted TorchServe writes new tokens: re-read them once on Unauthenticated
        self._token_args = (token, management_token, key_file)
        self._tokens = tokens
        self._rebuild = lambda t: cls(self.address, maddr, t.inference, t.management)

    def _reload_tokens(self) -> bool:
        """Re-resolve the tokens (key file, environment); rebuild the transport if they changed."""
        token, management_token, key_file = self._token_args
        try:
            fresh = resolve_tokens(token, management_token=management_token, key_file=key_file)
        except (OSError, ValueError):
            return False
        if fresh == self._tokens:
            return False
        self._transport.close()
        self._transport, self._tokens = self._rebuild(fresh), fresh
        return True

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self._transport.close()

    def _with_retries(self, fn: Callable[[], T]) -> T:
        for attempt in range(self.retries + 1):
            try:
                try:
                    return fn()
                except Unauthenticated:
                    if not self._reload_tokens():
                        raise
                    return fn()
            except Unavailable:
                if attempt == self.retries:
                    raise
                time.sleep(self.backoff * (2**attempt) * (0.5 + random.random()))
        raise AssertionError("unreachable")

    def send(
        self, model: str, request: pb.ExplainRequest, *, explain: bool | None = None
    ) -> pb.ExplainResponse:
        """Send a ready-made ExplainRequest; raises the typed error of a non-OK Status.

        Without a deadline of its own the request carries ``now + timeout`` on each attempt (the
        caller's message is left as it was): a worker that reaches it later answers DEADLINE_EXCEEDED
        instead of computing an answer nobody waits for."""
        use_explain = bool(request.methods) if explain is None else explain
        stamp = not request.deadline_unix_s and bool(self.timeout)

        def attempt() -> pb.ExplainResponse:
            if stamp:
                request.deadline_unix_s = time.time() + self.timeout
            return self._transport.call(model, request, timeout=self.timeout, explain=use_explain)

        try:
            resp = self._with_retries(attempt)
        finally:
            if stamp:
                request.ClearField("deadline_unix_s")
        if resp.status.code != pb.OK:
            raise error_for_code(
                pb.Code.Name(resp.status.code), resp.status.message, reason=resp.status.reason
            )
        return resp

    def predict(
        self, model: str, image: ImageLike, *, top_k: int = 5, normalized: bool = False
    ) -> Prediction:
        """Top-k classes of one image (path, PNG/JPEG bytes or array)."""
        req = build_request(image, top_k=top_k, normalized=normalized)
        return explanation_from_proto(self.send(model, req)).prediction

    def explain(
        self,
        model: str,
        image: ImageLike,
        methods: Methods,
        *,
        target: TargetLike = None,
        output: str = "tensor",
        top_k: int = 5,
        normalized: bool = False,
        reduction: str = "none",
        value_type: str = "float32",
    ) -> Explanation:
        """Prediction plus one heatmap per method (and per class for ``target="topK"``).

        ``methods``: a name, a list of names, or a dict name -> parameters. ``target``: class
        index, ``"predicted"`` (default) or ``"top3"``. ``output``: ``"tensor"`` (numpy values),
        ``"png"`` (overlay PNG bytes) or ``"both"``. ``reduction`` (``none``, ``sum``, ``abs_sum``,
        ``max_abs`` over channels) and ``value_type`` (``float32``, ``float16``, ``uint8``) make the
        answer compact; the values come back as float32 numpy arrays with the scale applied.
        """
        req = build_request(
            image,
            methods=methods,
            target=target,
            output=output,
            top_k=top_k,
            normalized=normalized,
            reduction=reduction,
            value_type=value_type,
        )
        return explanation_from_proto(self.send(model, req))

    def explain_stream(
        self,
        model: str,
        image: ImageLike,
        methods: Methods,
        *,
        target: TargetLike = None,
        output: str = "tensor",
        normalized: bool = False,
        reduction: str = "none",
        value_type: str = "float32",
    ) -> Iterator[Progress | Explanation]:
        """Like :meth:`explain`, streamed over gRPC: :class:`~xai_client.streaming.Progress` items while
        the server's iterative methods run, then the Explanation (see :mod:`xai_client.streaming`)."""
        stream = getattr(self._transport, "stream", None)
        if stream is None:
            raise InvalidArgument("streamed explanations need the gRPC protocol")
        req = build_request(
            image,
            methods=methods,
            target=target,
            output=output,
            normalized=normalized,
            reduction=reduction,
            value_type=value_type,
        )
        req.stream = True
        if self.timeout:
            req.deadline_unix_s = time.time() + self.timeout
        return read_stream(stream(model, req, timeout=self.timeout))

    def models(self) -> list[ModelInfo]:
        """Every registered model with its status (needs the management token)."""
        out = []
        for entry in self._with_retries(lambda: self._transport.list_models(timeout=self.timeout)):
            name = entry["modelName"]
            described: list[dict] = self._with_retries(
                lambda n=name: self._transport.describe_model(n, timeout=self.timeout)  # type: ignore[misc]
            )
            for d in described:
                workers = d.get("workers", [])
                ready = bool(workers) and all(w.get("status") == "READY" for w in workers)
                out.append(
                    ModelInfo(
                        name=d.get("modelName", name),
                        version=str(d.get("modelVersion", "")),
                        status="READY" if ready else "NOT_READY",
                        workers=len(workers),
                        batch_size=int(d.get("batchSize", 1)),
                        max_batch_delay_ms=int(d.get("maxBatchDelay", 0)),
                    )
                )
        return out

    def describe(self, model: str) -> dict:
        """The served model's own description (the handler's describe: model card, methods,
        default methods, ``credentials``); needs the management token."""
        described: list[dict] = self._with_retries(
            lambda: self._transport.describe_model(model, timeout=self.timeout, customized=True)
        )
        for d in described:
            meta = d.get("customizedMetadata")
            if meta:
                return json.loads(meta) if isinstance(meta, str) else dict(meta)
        return {}

    def methods(self, model: str) -> dict[str, MethodInfo]:
        """The methods ``model`` serves with their full parameter specs (type, default, choices, bounds,
        doc), from the server's method registry via the describe call; needs the management token."""
        return methods_from_describe(self.describe(model))

    def credentials(self, model: str) -> dict[str, Credential]:
        """Per method, the credential of ``model``'s archive (empty when it carries none)."""
        creds = self.describe(model).get("credentials") or {}
        return {m: credential_from_dict(s) for m, s in (creds.get("summary") or {}).items()}

    def live_credentials(self, model: str) -> LiveCredentials:
        """``model``'s live credentials: per method, the quality of the explanations it served, measured
        on sampled traffic, beside the archive's offline credential, and the input drift (``enabled``
        False when its archive was built without ``--monitor-rate``); needs the management token."""
        return live_from_describe(self.describe(model))

    def health(self) -> str:
        """TorchServe's health string (``"Healthy"``); raises Unavailable when it cannot be reached."""
        return self._with_retries(lambda: self._transport.ping(timeout=self.timeout))
