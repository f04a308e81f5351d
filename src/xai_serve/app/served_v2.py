"""The demo's second engine: the same archive on KServe's model server (``xai serve --engine kserve``),
asked over the Open Inference Protocol v2 (gRPC) for the same image and methods as TorchServe, and
compared with TorchServe's answer. The report's section says which engine answered what.
"""

from __future__ import annotations

import html
import shutil
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

# cheap methods, so the demo keeps its time budget (the second engine starts in about 10 s on 2 cores)
METHODS = ("gradient", "lrp", "gradcam")


@dataclass
class EngineCheck:
    """What the kserve engine answered for one image, beside TorchServe's answer."""

    engine: str
    protocol: str
    start_s: float
    latency_ms: float
    prediction: str
    same_prediction: bool
    max_abs_diff: dict[str, float] = field(default_factory=dict)  # method -> vs TorchServe's map
    error: str = ""


def kserve_check(store: Path, name: str, image_png: bytes, reference: Any, log: Any = print) -> EngineCheck:
    """Serve ``store/NAME.mar`` with the kserve engine, explain ``image_png`` with :data:`METHODS` over
    v2 gRPC and compare with ``reference`` (TorchServe's Explanation of the same image and methods)."""
    from xai_client import Client

    from xai_serve.serving.v2 import kserve_engine

    state = Path(tempfile.mkdtemp(prefix="xai-demo-kserve-"))
    cfg = kserve_engine.KServeConfig.on_free_ports(Path(store), [name], state)
    t = time.perf_counter()
    try:
        log("starting KServe's model server (the second engine, Open Inference Protocol v2)...")
        kserve_engine.start(cfg, timeout=300)
        start_s = time.perf_counter() - t
        with Client(cfg.grpc_address, "v2", key_file=cfg.key_file, timeout=300) as client:
            t = time.perf_counter()
            e = client.explain(name, image_png, list(METHODS), top_k=3)
            latency = (time.perf_counter() - t) * 1e3
        ref = {h.method: h.values for h in reference.heatmaps}
        diffs = {
            h.method: float(np.abs(np.asarray(h.values) - np.asarray(ref[h.method])).max())
            for h in e.heatmaps
            if h.method in ref
        }
        return EngineCheck(
            "KServe model server (kserve 0.21)",
            "Open Inference Protocol v2, gRPC",
            start_s,
            latency,
            f"{e.prediction.label} ({e.prediction.probability:.2f})",
            e.prediction.index == reference.prediction.index,
            diffs,
        )
    except Exception as exc:  # the demo reports a failing second engine instead of failing the report
        log(f"the kserve engine failed: {exc}")
        return EngineCheck(
            "KServe model server", "v2", time.perf_counter() - t, 0.0, "", False, error=str(exc)
        )
    finally:
        kserve_engine.stop(state)
        shutil.rmtree(state, ignore_errors=True)


def render_section(check: EngineCheck | None) -> str:
    """The report's section on the second engine ("" when it did not run)."""
    if check is None:
        return ""
    esc = html.escape
    if check.error:
        return f"<h2>Second engine</h2><p>{esc(check.engine)} failed: <code>{esc(check.error)}</code></p>"
    rows = "".join(
        f"<tr><td>{esc(m)}</td><td>{d:.2e}</td></tr>" for m, d in sorted(check.max_abs_diff.items())
    )
    same = "the same class" if check.same_prediction else "a DIFFERENT class"
    return f"""<h2>Second engine: {esc(check.engine)}</h2>
<p>The first image again, answered by <b>{esc(check.engine)}</b> over the {esc(check.protocol)}
(<code>xai serve --engine kserve</code>; the maps above were answered by <b>TorchServe</b> over its gRPC API):
prediction {esc(check.prediction)}, {same} as TorchServe; {check.latency_ms:.0f} ms for
{len(check.max_abs_diff)} methods; the engine was ready {check.start_s:.1f} s after its start.</p>
<table><tr><th>method</th><th>max |kserve − TorchServe|</th></tr>{rows}</table>
"""
