"""The serving half of ``make demo``: archive a checkpoint, start TorchServe, explain test images over
gRPC with every registered method, write an HTML report, stop the server.

``serve_and_report(checkpoint)`` returns the report's path (``demo/report.html``). The images come
from the checkpoint's dataset test split (the built-in digits for the default model); overlays are
the PNGs the server renders, written next to the report and linked from it. A :class:`Companion`
archive, served by the same TorchServe, can answer some methods' rows: the demo's ``decomposed`` row
comes from a ResNet-20 on the same digits, whose last feature maps are 7x7 (the default SimpleNet's are
1x1, so its decomposed filter maps are uniform squares).
"""

from __future__ import annotations

import dataclasses
import html
import io
import json
import shutil
import statistics
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from xai_serve.app.live_table import live_table
from xai_serve.app.served_v2 import render_section as render_second_engine
from xai_serve.serving.archive import ArchiveOptions, build_archive
from xai_serve.serving.heatmaps import overlay_scale
from xai_serve.serving.live_monitor import MonitorConfig
from xai_serve.serving.server import ServerConfig, start, stop


@dataclass
class Row:
    index: int
    label: str
    image: str  # file name relative to the report
    prediction: list[tuple[str, float]]
    overlays: dict[str, str]  # method -> file name
    stats: dict[str, dict[str, float]]
    latency_ms: float
    server_ms: dict[str, float] = field(default_factory=dict)
    constant: dict[str, float] = field(default_factory=dict)  # method -> its value, for a constant map
    strips: list[str] = field(default_factory=list)  # methods whose overlay is a strip: map, then filters


@dataclass(frozen=True)
class Companion:
    """A second archive served beside the report's model; it answers ``methods`` for the same images
    (its credentials, when given, travel with its heatmaps). ``why`` is shown under those rows."""

    name: str
    checkpoint: Path
    methods: tuple[str, ...]
    credentials: Path | None = None
    why: str = ""
    #: rows this archive answers BESIDE the report model's (label, method, params): one request each,
    #: shown as ``name: label`` rows (the demo's digits ViT: the same images, the methods that apply)
    beside: tuple[tuple[str, str, dict[str, Any]], ...] = ()
    #: methods asked of this archive on the first image only to show its typed refusal in the report
    refused: tuple[str, ...] = ()


def _png(pixels: np.ndarray, scale: int) -> bytes:
    from PIL import Image

    arr = (np.clip(pixels, 0, 1) * 255).round().astype(np.uint8)
    if arr.ndim == 3 and arr.shape[0] in (1, 3):
        arr = arr[0] if arr.shape[0] == 1 else np.moveaxis(arr, 0, -1)
    arr = arr.repeat(scale, axis=0).repeat(scale, axis=1)
    buf = io.BytesIO()
    Image.fromarray(arr).save(buf, format="PNG")
    return buf.getvalue()


def test_images(checkpoint: Path, n: int) -> list[tuple[np.ndarray, int, str]]:
    """``n`` test-split images of the checkpoint's dataset as [C,H,W] pixels in 0..1, with labels."""
    from xai_serve.data import load_dataset
    from xai_serve.models import ModelCard

    card = ModelCard.load(checkpoint / "model.json")
    bundle = load_dataset(
        card.dataset, "test", channels=card.input_shape[0] if card.input_shape[0] != 1 else None
    )
    out = []
    for i in range(min(n, len(bundle.dataset))):  # type: ignore[arg-type]
        x, y = bundle.dataset[i]
        out.append((bundle.denormalise(x).clamp(0, 1).numpy(), int(y), bundle.labels[int(y)]))
    return out


def serve_and_report(
    checkpoint: str | Path,
    *,
    out_dir: str | Path = "demo",
    store: str | Path = "model_store",
    name: str = "digits",
    n_images: int = 10,
    server: ServerConfig | None = None,
    log: Any = print,
    credentials: str | Path | None = None,
    companion: Companion | None = None,
    beside: Companion | None = None,
) -> Path:
    """Archive, serve, explain ``n_images`` test images with every method over gRPC, write the report.

    With ``server`` (an already running TorchServe serving ``name``, and the companion's archive when
    one is given), archive and start/stop are skipped. ``beside``: a second companion whose
    :attr:`Companion.beside` rows are added under the report model's (served by the same TorchServe).
    """
    from xai_client import Client

    from xai_serve.explain import list_methods

    t_start = time.perf_counter()
    checkpoint, out = Path(checkpoint), Path(out_dir)
    if out.exists():
        shutil.rmtree(out / "images", ignore_errors=True)
    (out / "images").mkdir(parents=True, exist_ok=True)
    methods = sorted(list_methods())
    specs = dict(list_methods())  # the beside rows add their labels
    images = test_images(checkpoint, n_images)
    started = None
    phases: dict[str, float] = {}
    archives = [(checkpoint, name, credentials)]
    for extra in (companion, beside):
        if extra is not None:
            archives.append((extra.checkpoint, extra.name, extra.credentials))
    if server is None:
        t = time.perf_counter()
        for ckpt, archive_name, creds_file in archives:
            mar = build_archive(
                ckpt,
                archive_name,
                store=store,
                options=ArchiveOptions(
                    batch_size=4,
                    max_batch_delay_ms=5,
                    response_timeout_s=300,
                    credentials=creds_file,
                    monitor=MonitorConfig(rate=1.0, queue_size=64),  # live credentials on the demo's traffic
                ),
            )
            log(f"archived {mar}")
        phases["archive"] = time.perf_counter() - t
        state = Path(tempfile.mkdtemp(prefix="xai-demo-"))
        cfg = ServerConfig.on_free_ports(Path(store), [a[1] for a in archives], state)
        t = time.perf_counter()
        log("starting TorchServe (waits until every model's worker is READY)...")
        started = start(cfg, timeout=300)
        phases["TorchServe start to READY"] = time.perf_counter() - t
        server = started.config
    rows: list[Row] = []
    live = None
    creds: dict[str, dict[str, Any]] = {}  # method -> credential served with its heatmaps
    layers: dict[str, str] = {}  # method -> the layer a layer method used (Heatmap.layer)
    moved = set(companion.methods) if companion is not None else set()
    sources = {m: (companion.name, companion.why) for m in methods if m in moved} if companion else {}
    refusals: dict[str, str] = {}  # ``beside`` method -> the server's typed refusal
    first: tuple[bytes, Any] | None = (
        None  # the first image and TorchServe's answer (the second engine's check)
    )
    try:
        with Client(server.grpc_address, "grpc", key_file=server.key_file, timeout=300) as client:
            # each spec's demo parameters (class_image: fewer steps keep the demo inside its budget)
            request_methods = {m: dict(specs[m].demo_params) for m in methods if m not in moved}
            for i, (pixels, _y, label) in enumerate(images):
                image_png = _png(pixels, 1)
                (out / "images" / f"{i:02d}_input.png").write_bytes(
                    _png(pixels, overlay_scale(pixels.shape[-1]))
                )
                t = time.perf_counter()
                e = client.explain(name, image_png, request_methods, output="both", top_k=3)
                latency = (time.perf_counter() - t) * 1e3
                first = first or (image_png, e)
                row = Row(
                    i,
                    label,
                    f"{i:02d}_input.png",
                    [(s.label, s.probability) for s in e.prediction.top],
                    {},
                    {},
                    latency,
                    {k: v for k, v in e.timings.items() if k != "batch_size"},
                )
                heatmaps = list(e.heatmaps)
                if companion is not None and moved:
                    other = {m: dict(specs[m].demo_params) for m in companion.methods}
                    heatmaps += client.explain(companion.name, image_png, other, output="both").heatmaps
                for h in heatmaps:
                    _collect(h, row, out, layers, creds)
                if beside is not None:
                    _explain_beside(client, beside, image_png, row, out, layers, refusals if i == 0 else None)
                rows.append(row)
                log(
                    f"image {i}: true {label}, predicted {e.prediction.label} "
                    f"({e.prediction.probability:.2f}), "
                    f"{len(heatmaps)} heatmaps in {latency:.0f} ms"
                    + (f" (+ {', '.join(sorted(moved))} from {companion.name})" if companion else "")
                )
        with server.client("grpc", timeout=60) as described:  # the management address filled in
            live = settled_live_credentials(described, name)
    finally:
        if started is not None:
            stop(server.state_dir)
            shutil.rmtree(server.state_dir, ignore_errors=True)
    phases["explanations (gRPC)"] = sum(r.latency_ms for r in rows) / 1e3
    second = None
    if started is not None and first is not None:  # our own store: the same archive on the kserve engine
        from xai_serve.app.served_v2 import kserve_check

        t = time.perf_counter()
        second = kserve_check(Path(store), name, *first, log=log)
        phases["kserve engine (start + 1 explanation over v2)"] = time.perf_counter() - t
    report = out / "report.html"
    if beside is not None:  # its rows join the table, each labelled by its archive
        for label, method, _params in beside.beside:
            key = f"{beside.name}: {label}"
            methods.append(key)
            specs[key] = specs[method]
            sources[key] = (beside.name, beside.why)
    graph = _model_graph(checkpoint, out)
    cred_doc = json.loads(Path(credentials).read_text()) if credentials else None
    report.write_text(
        render_report(
            rows,
            methods,
            specs,
            name,
            phases,
            time.perf_counter() - t_start,
            credentials=(creds, cred_doc),
            layers=layers,
            graph=graph,
            sources=sources,
            second_engine=second,
            live=live,
            refusals=(beside.name, refusals) if beside is not None else None,
        )
    )
    (out / "results.json").write_text(json.dumps([r.__dict__ for r in rows], indent=2))
    return report


def _explain_beside(
    client: Any,
    beside: Companion,
    image_png: bytes,
    row: Row,
    out: Path,
    layers: dict[str, str],
    refusals: dict[str, str] | None,
) -> None:
    """Ask ``beside``'s archive for each of its rows on one image (one request per row: ``lrp`` twice,
    with two composites); with ``refusals``, also each refused method, noting the server's typed error."""
    from xai_client.errors import XaiClientError

    for label, method, params in beside.beside:
        e = client.explain(beside.name, image_png, {method: dict(params)}, output="both")
        _collect(e.heatmap(method), row, out, layers, {}, key=f"{beside.name}: {label}")
    for method in beside.refused:
        if refusals is None:
            break
        try:
            client.explain(beside.name, image_png, {method: {}}, output="tensor")
        except XaiClientError as err:
            refusals[method] = str(err)
        else:
            refusals[method] = "answered (not refused)"


def _collect(
    h: Any,
    row: Row,
    out: Path,
    layers: dict[str, str],
    creds: dict[str, dict[str, Any]],
    key: str | None = None,
) -> None:
    """Write one served heatmap's overlay next to the report and note its figures in ``row`` (under
    ``key``, by default its method)."""
    key = key or h.method
    fname = (
        f"{row.index:02d}_{key.replace(': ', '_').replace(' ', '_').replace('(', '').replace(')', '')}.png"
    )
    (out / "images" / fname).write_bytes(h.png or b"")
    row.overlays[key] = fname
    row.stats[key] = dict(h.stats)
    if h.kind == "heatmap" and h.values is not None and h.values.size:
        v = np.asarray(h.values, dtype=np.float64)
        if is_constant(v):
            row.constant[key] = float(v.flat[0])
    if h.filters and key not in row.strips:  # the server drew the class map, then the top filters
        row.strips.append(key)
    if h.layer:
        layers[key] = h.layer
    if h.credential is not None:
        creds[key] = dataclasses.asdict(h.credential)


def _model_graph(checkpoint: Path, out: Path) -> str:
    """``model_graph.png`` (``xai graph``) for the report, or why it is missing."""
    from xai_serve.errors import XaiError
    from xai_serve.export.graph import graph_checkpoint

    try:
        graph_checkpoint(checkpoint, out / "model_graph")
    except XaiError as e:
        return f"(no layer graph: {e})"
    return "model_graph.png"


REPORT_WIDTH = 1280  # the report fits a window this wide (methods are rows, images columns)
METHOD_COLUMN = 190


#: a map is constant when its values spread less than this fraction of their magnitude (at least 1):
#: float32 heatmaps (an upsampled 1x1 map of magnitude ~1 differs from itself by rounding, ~1e-6)
CONSTANT_RTOL = 1e-5


def is_constant(values: np.ndarray) -> bool:
    """Whether a heatmap shows one value everywhere (up to float32 rounding)."""
    v = np.asarray(values, dtype=np.float64)
    return float(v.max() - v.min()) <= CONSTANT_RTOL * max(1.0, float(np.abs(v).max()))


def constant_reason(method: str, value: float) -> str:
    """Why a method can return the same value for every pixel (shown next to such a map)."""
    if method == "decomposed":
        return (
            f"constant ({value:.3g}): this model's last feature maps are 1x1; decomposed.html shows "
            "ResNet-20's 7x7 maps"
        )
    if "cam" in method:
        return (
            f"constant ({value:.3g}): the gradient-weighted sum of the layer's activations is <= 0 "
            "everywhere, and Grad-CAM's ReLU clips it to 0"
        )
    return (
        f"constant ({value:.3g}): the explained score does not change with any pixel locally "
        "(e.g. every path to it passes an inactive ReLU)"
    )


def _verdict(
    rows: list[Row],
    methods: list[str],
    model: str,
    median_ms: float,
    creds: dict[str, dict[str, Any]],
) -> str:
    esc = html.escape
    correct = sum(1 for r in rows if r.prediction and r.prediction[0][0] == r.label)
    parts = [
        f"<b>{correct}/{len(rows)}</b> test images predicted correctly by <code>{esc(model)}</code> "
        f"served by TorchServe over gRPC; {len(methods)} explanation rows per image, median "
        f"end-to-end latency {median_ms:.0f} ms per image."
    ]
    scored = {m: c for m, c in creds.items() if c.get("certified") and c.get("aopc_morf") is not None}
    if scored:
        best = max(scored, key=lambda m: scored[m]["aopc_morf"])
        parts.append(
            f"Most faithful by AOPC (MoRF, the archive's credentials): <b>{esc(best)}</b> "
            f"({scored[best]['aopc_morf']:.3f})."
        )
        passed = [m for m, c in scored.items() if c.get("sanity_pass")]
        failed = [m for m, c in scored.items() if not c.get("sanity_pass")]
        parts.append(
            "Weight-randomisation sanity check: "
            + (f"passed by {esc(', '.join(passed))}" if passed else "passed by none")
            + (f"; <b>failed by {esc(', '.join(failed))}</b>." if failed else ".")
        )
    flat = {m: sum(m in r.constant for r in rows) for m in methods}
    flat = {m: k for m, k in flat.items() if k}
    if flat:
        parts.append(
            "Constant maps (reason shown under each): "
            + ", ".join(f"{esc(m)} on {k}/{len(rows)} images" for m, k in flat.items())
            + "."
        )
    else:
        parts.append("No method returned a constant map.")
    return " ".join(parts)


STRIP_WIDTH = (REPORT_WIDTH - 60) // 2 - 20  # two filter strips side by side


def _strip_section(method: str, rows: list[Row], source: tuple[str, str] | None) -> str:
    """The whole strips of ``method`` (its table cells show only their first panel, the class map):
    per image the class map, then the top filters' activation maps."""
    esc = html.escape
    by = f" (served by <code>{esc(source[0])}</code>)" if source else ""
    figures = "".join(
        f'<figure class="strip"><img src="images/{esc(r.overlays[method])}" alt="{esc(method)} strip '
        f'{r.index}"><figcaption>image {r.index} (true {esc(r.label)}): class map, then the top filters'
        "</figcaption></figure>"
        for r in rows
        if method in r.strips and method in r.overlays
    )
    title = f"<code>{esc(method)}</code>: the class map and the top filters' activation maps{by}"
    return f"<h2>{title}</h2>{figures}"


def _refusal_line(refusals: tuple[str, dict[str, str]] | None) -> str:
    """The methods a ``beside`` archive refused, each with the server's reason."""
    if not refusals or not refusals[1]:
        return ""
    archive, why = refusals
    items = "".join(
        f"<li><code>{html.escape(m)}</code>: {html.escape(r)}</li>" for m, r in sorted(why.items())
    )
    return f'<p class="refused">Refused by <code>{html.escape(archive)}</code>:</p><ul>{items}</ul>'


def _graph_section(graph: str | None) -> str:
    if not graph:
        return ""
    if not graph.endswith(".png"):
        return f"<p>{html.escape(graph)}</p>"
    return (
        "<h2>Model layer graph (the module names the <code>layer=</code> parameter takes)</h2>"
        f'<p><a href="{html.escape(graph)}"><img src="{html.escape(graph)}" alt="layer graph" '
        'style="max-width:100%;max-height:900px"></a></p>'
    )


def settled_live_credentials(client: Any, name: str, timeout: float = 20.0) -> Any:
    """The served model's live credentials once its monitor has checked every queued sample (or after
    ``timeout`` seconds); None when the server does not say."""
    from xai_client.errors import XaiClientError

    deadline = time.monotonic() + timeout
    try:
        live = client.live_credentials(name)
        while live.enabled and live.queued and time.monotonic() < deadline:
            time.sleep(0.25)
            live = client.live_credentials(name)
    except XaiClientError:
        return None
    return live


def render_report(
    rows: list[Row],
    methods: list[str],
    specs: dict[str, Any],
    model: str,
    phases: dict[str, float],
    total_s: float,
    credentials: tuple[dict[str, dict[str, Any]], dict[str, Any] | None] | None = None,
    layers: dict[str, str] | None = None,
    graph: str | None = None,
    sources: dict[str, tuple[str, str]] | None = None,
    second_engine: Any = None,
    live: Any = None,
    refusals: tuple[str, dict[str, str]] | None = None,
) -> str:
    """The demo report, verdict first: the verdict, the maps (one row per method, one column per
    image: it fits a 1280-pixel window), predictions and latency per image, the credentials, the
    run's phases (collapsed); other demo sections link themselves at the end. ``sources``: method ->
    (archive, why) for the rows another archive answered; ``refusals``: (archive, method -> the server's
    refusal) shown under the table."""
    esc = html.escape
    layers = layers or {}
    sources = sources or {}
    archives = {model, *(archive for archive, _ in sources.values())}
    lat = [r.latency_ms for r in rows]
    median = statistics.median(lat) if lat else 0.0
    width = max(48, min(112, (REPORT_WIDTH - 60 - METHOD_COLUMN) // max(1, len(rows)) - 10))
    head = "".join(
        f'<th><img src="images/{esc(r.image)}" width="{width}" alt="input {r.index}"><br>'
        f"{esc(r.label)} {'✓' if r.prediction and r.prediction[0][0] == r.label else '✗'}</th>"
        for r in rows
    )
    body = []
    for m in methods:
        note = "signed: red +, blue −" if getattr(specs[m], "signed", True) else "unsigned"
        cells = []
        for r in rows:
            src = r.overlays.get(m)
            st = r.stats.get(m, {})
            extra = f"<br><small>cons. {st['conservation']:.2f}</small>" if "conservation" in st else ""
            if m in r.constant:
                extra += f"<br><small class='why'>{esc(constant_reason(m, r.constant[m]))}</small>"
            img = f'<img src="images/{esc(src)}" width="{width}" alt="{esc(m)} {r.index}">' if src else "—"
            if src and m in r.strips:  # the cell shows the strip's first panel, the class map
                box = f"width:{width}px;height:{width}px"
                img = (
                    f'<div class="crop" style="{box}"><img src="images/{esc(src)}" height="{width}" '
                    f'alt="{esc(m)} {r.index}"></div>'
                )
            cells.append(f"<td>{img}{extra}</td>")
        layer = f"<br>layer {esc(layers[m])}" if m in layers else ""
        if m in sources:
            archive, why = sources[m]
            layer += f"<br>served by <code>{esc(archive)}</code>" + (f": {esc(why)}" if why else "")
        body.append(f"<tr><th class='m'>{esc(m)}<br><small>{note}{layer}</small></th>{''.join(cells)}</tr>")
    calls = f"one gRPC call to each of {len(archives)} archives" if len(archives) > 1 else "one gRPC call"
    strip_methods = sorted({m for r in rows for m in r.strips if m in r.overlays})
    strip_section = "".join(_strip_section(m, rows, sources.get(m)) for m in strip_methods)
    per_image = []
    for r in rows:
        pred = ", ".join(f"{esc(lbl)} {p:.3f}" for lbl, p in r.prediction)
        server = ", ".join(f"{k[:-3]} {v:.0f}" for k, v in r.server_ms.items() if v)
        per_image.append(
            f"<tr><td>{r.index}</td><td>{esc(r.label)}</td><td>{pred}</td><td>{r.latency_ms:.0f}</td>"
            f"<td>{esc(server)}</td></tr>"
        )
    creds = credentials[0] if credentials else {}
    cred_section = ""
    if credentials and credentials[0]:  # issue 15: the credentials served with the heatmaps
        from xai_serve.evaluation.certify import credentials_table

        cred_section = (
            "<h2>Explanation credentials (served with every heatmap; badge on each overlay: "
            "green ✓ passed, red ✗ failed the sanity check)</h2>" + credentials_table(*credentials)
        )
    phase_rows = "".join(f"<li>{esc(k)}: {v:.1f} s</li>" for k, v in phases.items())
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>xai-serve demo: {esc(model)}</title>
<link rel="icon" href="data:,">
<style>body{{font-family:sans-serif;margin:1.5em;max-width:{REPORT_WIDTH - 60}px}}
table{{border-collapse:collapse;margin:0.5em 0}}
td,th{{border:1px solid #ccc;padding:3px;text-align:center;vertical-align:top;font-size:12px}}
th.m{{width:{METHOD_COLUMN}px;text-align:left}} small.why{{color:#a40;display:block;max-width:{width}px}}
div.crop{{overflow:hidden;margin:auto}} div.crop img{{max-width:none}}
figure.strip{{display:inline-block;margin:0.3em;width:{STRIP_WIDTH}px}} figure.strip img{{width:100%}}
.verdict{{font-size:1.05em;background:#eef6ee;border-left:4px solid #2a7;padding:0.6em 1em}}
img{{image-rendering:pixelated}}</style>
</head><body>
<h1>xai-serve demo: model <code>{esc(model)}</code> served by TorchServe over gRPC</h1>
<p class="verdict">{_verdict(rows, methods, model, median, creds)}</p>
<h2>Explanations (one row per method; columns: the test images, true label ✓/✗ prediction)</h2>
<table><tr><th class="m">method</th>{head}</tr>
{"".join(body)}
</table>
{_refusal_line(refusals)}{strip_section}<h2>Predictions and latency per image</h2>
<table><tr><th>image</th><th>true</th><th>prediction (top 3)</th><th>latency ms</th><th>server ms</th></tr>
{"".join(per_image)}
</table>
{cred_section}
{render_second_engine(second_engine)}
{live_table(live)}
{_graph_section(graph)}
<details><summary>Run: phases and total time</summary><ul>{phase_rows}</ul>
<p>Total {total_s:.1f} s; {len(rows)} images, {len(methods)} methods, {calls} per image.</p>
</details>
</body></html>
"""
