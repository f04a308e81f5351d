"""The demo report's "Live credentials" table: per method, the figures the served model measured on the
demo's own traffic (``Client.live_credentials``) next to the archive's offline credentials."""

from __future__ import annotations

import html
from typing import Any


def _f(value: float | None, fmt: str = ".3f") -> str:
    return "—" if value is None else format(value, fmt)


def live_table(live: Any) -> str:
    """HTML for an ``xai_client.live.LiveCredentials`` (empty when monitoring was off)."""
    if live is None or not live.enabled or not live.methods:
        return ""
    esc = html.escape
    rows = []
    for name, m in sorted(live.methods.items()):
        rows.append(
            f"<tr><td>{esc(name)}</td><td>{m.samples}</td><td>{m.dropped}</td>"
            f"<td>{_f(m.aopc_morf)}</td><td>{_f(m.credential_aopc_morf)}</td>"
            f"<td>{_f(m.aopc_ratio, '.2f')}</td>"
            f"<td>{_f(m.abpc)}</td><td>{_f(m.credential_abpc)}</td><td>{_f(m.stability, '.2f')}</td></tr>"
        )
    off = "".join(f"<li>{esc(k)}: {esc(v)}</li>" for k, v in sorted(live.off.items()))
    return (
        "<h2>Live credentials (measured by the server on this demo's own requests, next to the "
        "archive's)</h2>"
        f"<p>Sampling rate {live.rate:g}; input drift score {_f(live.drift_score, '.2f')} over "
        f"{live.drift_samples} images (alert above 0.5). Live AOPC / ABPC: a 10-step deletion curve "
        "(MoRF, LeRF) of each sampled map; archived: the credentials' 64-step curves; stability: Spearman "
        "of the map and the map of a slightly perturbed input.</p>"
        "<table><tr><th>method</th><th>samples</th><th>dropped</th><th>live AOPC MoRF</th>"
        "<th>archived AOPC MoRF</th><th>ratio</th><th>live ABPC</th><th>archived ABPC</th>"
        f"<th>stability</th></tr>{''.join(rows)}</table>"
        + (f"<details><summary>not monitored</summary><ul>{off}</ul></details>" if off else "")
    )
