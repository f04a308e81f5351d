"""The explanation cache of one served model: a bounded LRU of finished explanations in the worker.

Key (sha256 over): the weights' sha256 (the archive's ``weights_sha256``), a digest of the *decoded*
input tensor (dtype, shape and bytes: two encodings of the same pixels hit, any other pixel misses),
the method, its parameters canonicalised (converted to their declared types, defaults filled in, JSON
with sorted keys: ``"0.25"`` and ``0.25`` are one key) and the wire target (``predicted``, a class, a
``topK`` or a component: each a function of the input and the weights). A cache belongs to one service,
so it is never shared across models nor versions; the weights' digest in the key guards the rest.

Value: the request's rows for that method (explained target, single-row :class:`Attribution`, cloned),
re-encoded on a hit exactly as when computed, so a hit is bit-identical. Methods whose randomness is
unseeded (the spec's ``seed`` parameter unset: SmoothGrad without a seed) are never cached, nor are
results of an :class:`Attribution` subclass (extra fields a copy could lose). Size bound: the bytes of
the stored maps (``xai archive --cache-mib``); the least recently used entries go first.
"""

from __future__ import annotations

import hashlib
import json
from collections import OrderedDict
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import torch
from xai_client.api.v1 import explain_pb2 as pb

from xai_serve.errors import InvalidArgumentError
from xai_serve.explain import Attribution, Component, MethodSpec

CachedRows = list[tuple[int | Component, Attribution]]

DEFAULT_CACHE_MIB = 16.0


def input_digest(x: torch.Tensor) -> str:
    """sha256 of a decoded input tensor (dtype, shape, bytes)."""
    data = x.detach().cpu().contiguous()
    h = hashlib.sha256(f"{data.dtype}|{tuple(data.shape)}|".encode())
    h.update(data.view(torch.uint8).numpy().tobytes() if data.numel() else b"")
    return h.hexdigest()


def row_of(result: Attribution, j: int) -> Attribution:
    """Row ``j`` of ``result`` as a one-row Attribution of its own (cloned)."""
    return Attribution(
        heatmap=result.heatmap[j : j + 1].detach().clone(),
        stats={k: [v[j]] for k, v in result.stats.items() if j < len(v)},
        logits=None if result.logits is None else result.logits[j : j + 1].detach().clone(),
        classes=None if result.classes is None else [result.classes[j]],
        layer=result.layer,
    )


@dataclass
class CacheStats:
    hits: int = 0
    misses: int = 0
    bytes: int = 0
    entries: int = 0


class ExplanationCache:
    """Bounded LRU of explanations of one model (see the module doc). ``max_bytes`` 0 disables it."""

    def __init__(self, weights_sha256: str, max_bytes: int) -> None:
        self.weights = weights_sha256 or ""
        self.max_bytes = max(0, int(max_bytes))
        self._entries: OrderedDict[str, tuple[CachedRows, int]] = OrderedDict()
        self.stats = CacheStats()

    @property
    def enabled(self) -> bool:
        return self.max_bytes > 0

    def key(self, spec: MethodSpec, params: Mapping[str, Any], target: pb.Target, digest: str) -> str | None:
        """The key of ``spec``'s explanation with wire ``params`` of the input ``digest`` for ``target``;
        None when it must not be cached (disabled, unseeded randomness)."""
        if not self.enabled:
            return None
        converted = spec.converted(params)
        if spec.seed is not None and converted.get(spec.seed) is None:
            return None
        text = json.dumps(
            [self.weights, digest, spec.name, converted, target.SerializeToString(deterministic=True).hex()],
            sort_keys=True,
            default=str,
        )
        return hashlib.sha256(text.encode()).hexdigest()

    def get(self, key: str | None) -> CachedRows | None:
        """The rows stored under ``key`` (most recently used now), or None (a miss, counted)."""
        if key is None:
            return None
        entry = self._entries.get(key)
        if entry is None:
            self.stats.misses += 1
            return None
        self._entries.move_to_end(key)
        self.stats.hits += 1
        return entry[0]

    def put(self, key: str | None, rows: CachedRows) -> None:
        """Store ``rows`` under ``key`` (evicting the least recently used beyond the bound)."""
        if key is None or not rows:
            return
        size = sum(a.heatmap.element_size() * a.heatmap.numel() + 256 for _, a in rows)
        if size > self.max_bytes:
            return
        old = self._entries.pop(key, None)
        if old is not None:
            self.stats.bytes -= old[1]
        self._entries[key] = (rows, size)
        self.stats.bytes += size
        while self.stats.bytes > self.max_bytes:
            _, (_, freed) = self._entries.popitem(last=False)
            self.stats.bytes -= freed
        self.stats.entries = len(self._entries)


def explanation_cache(xai_config: Mapping[str, Any]) -> ExplanationCache:
    """The cache an archive's ``xai:`` config asks for (``cache_mib``, default
    :data:`DEFAULT_CACHE_MIB`; 0 disables), keyed by its ``weights_sha256``."""
    try:
        mib = float(xai_config.get("cache_mib", DEFAULT_CACHE_MIB))
    except (TypeError, ValueError):
        raise InvalidArgumentError(
            f"cache_mib in model-config.yaml must be a number, not {xai_config.get('cache_mib')!r}"
        ) from None
    if not mib >= 0:
        raise InvalidArgumentError(f"cache_mib in model-config.yaml must be >= 0, not {mib}")
    return ExplanationCache(str(xai_config.get("weights_sha256") or ""), int(mib * 2**20))
