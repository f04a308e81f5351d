"""Live credentials as the client sees them: per method, the explanation-quality figures the server
measured on its own traffic (sampled explanations checked again: short deletion curve, stability), beside
the archive's offline credential, and the input drift of the served images (the describe call's
``live``; ``Client.live_credentials(model)``)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class LiveMethod:
    """One method's live figures (means over the server's last ``window`` samples; None until measured).

    ``aopc_morf`` / ``aopc_lerf`` / ``abpc``: the short (10-step) deletion curve's scores on live inputs;
    ``stability``: Spearman of the map and the map of a slightly perturbed input; ``credential_*``: the
    archive's offline values; ``aopc_ratio``: live over offline MoRF AOPC."""

    samples: int
    dropped: int
    errors: int
    aopc_morf: float | None = None
    aopc_lerf: float | None = None
    abpc: float | None = None
    stability: float | None = None
    credential_aopc_morf: float | None = None
    credential_aopc_lerf: float | None = None
    credential_abpc: float | None = None
    aopc_ratio: float | None = None


@dataclass(frozen=True)
class LiveCredentials:
    """A served model's live credentials; ``enabled`` False when its archive's monitor rate is 0."""

    enabled: bool
    rate: float = 0.0
    drift_score: float | None = None
    drift_samples: int = 0
    methods: dict[str, LiveMethod] = field(default_factory=dict)
    off: dict[str, str] = field(default_factory=dict)  # methods not monitored, with the reason
    queued: int = 0  # samples waiting for their check or being checked


def _pair(value: Any, order: str) -> float | None:
    return (value or {}).get(order) if isinstance(value, dict) else None


def live_from_describe(described: dict[str, Any]) -> LiveCredentials:
    """The ``live`` part of a describe answer (absent or None: monitoring is off)."""
    live = described.get("live")
    if not live:
        return LiveCredentials(enabled=False)
    methods = {
        name: LiveMethod(
            samples=int(f.get("samples", 0)),
            dropped=int(f.get("dropped", 0)),
            errors=int(f.get("errors", 0)),
            aopc_morf=_pair(f.get("aopc"), "morf"),
            aopc_lerf=_pair(f.get("aopc"), "lerf"),
            abpc=f.get("abpc"),
            stability=f.get("stability"),
            credential_aopc_morf=_pair(f.get("cred_aopc"), "morf"),
            credential_aopc_lerf=_pair(f.get("cred_aopc"), "lerf"),
            credential_abpc=f.get("cred_abpc"),
            aopc_ratio=f.get("aopc_ratio"),
        )
        for name, f in (live.get("methods") or {}).items()
    }
    drift = live.get("drift") or {}
    return LiveCredentials(
        enabled=bool(live.get("enabled", True)),
        rate=float(live.get("rate", 0.0)),
        drift_score=drift.get("score"),
        drift_samples=int(drift.get("samples", 0)),
        methods=methods,
        off=dict(live.get("off") or {}),
        queued=int(live.get("queued", 0)),
    )
