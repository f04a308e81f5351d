"""The decomposed-layer section of ``make demo`` ("Decomposing the Deep" on the built-in digits, a few
seconds on a CPU).

On the demo's ResNet-20 (He et al. 2016) trained on the digits at 28x28 (``training/digits_resnet20.toml``,
:data:`~xai_serve.app.default_model.DECOMPOSITION`), whose last stage is 7x7 so that each filter's
activation map shows where it fired: find k = 5 influential filters per class on the training split,
compare test accuracy of the original and the decomposed final layer, explain one test image with the
``decomposed`` method on the decomposed model, and write ``decomposed.html`` (+ index file and overlay
PNG) next to the demo report, which links it.
"""

from __future__ import annotations

import copy
import html
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

K = 5
PAGE = "decomposed.html"


def decomposed_section(
    checkpoint: Path,
    out_dir: Path,
    log: Callable[[str], None] = print,
    k: int = K,
    limit: int | None = None,
) -> dict[str, Any]:
    """Run the section; returns its figures (and writes ``out_dir/decomposed.html``). ``limit``: use
    only the first images of each split (tests)."""
    import numpy as np
    from xai_client.overlay import filters_overlay, to_png

    from xai_serve.atomic import atomic_write_bytes, atomic_write_text
    from xai_serve.decomposition.features import capture
    from xai_serve.decomposition.indices import save_indices
    from xai_serve.decomposition.runs import find_report, validate
    from xai_serve.decomposition.source import open_model, open_split
    from xai_serve.explain.decomposed import DecomposedAttribution, DecomposedExplainer
    from xai_serve.models.decomposed import decompose

    model, card = open_model(checkpoint)
    assert card is not None
    channels = card.input_shape[0]
    train = open_split(card.dataset, "train", root=None, channels=channels)
    test = open_split(card.dataset, "test", root=None, channels=channels)
    if limit is not None:
        from torch.utils.data import Subset

        train.dataset = Subset(train.dataset, range(min(limit, len(train.dataset))))  # type: ignore[arg-type]
        test.dataset = Subset(test.dataset, range(min(limit, len(test.dataset))))  # type: ignore[arg-type]
    report = find_report(model, train, [k], mass=0.9, batch_size=64)
    indices = report["k"][str(k)]
    result = validate(model, indices, test, batch_size=64)
    out_dir.mkdir(parents=True, exist_ok=True)
    save_indices(out_dir / "decomposed_indices.json", indices)
    log(
        f"decomposed ({report['layer']}), k={k} filters per class found on {report['images']} train images: "
        f"test accuracy original {100 * result['original_accuracy']:.2f} %, "
        f"decomposed {100 * result['decomposed_accuracy']:.2f} %"
    )
    dec = decompose(copy.deepcopy(model), indices).eval()
    shown = first_correct(dec, test.dataset)
    x, label = test.dataset[shown]
    a = DecomposedExplainer(dec).attribute(x[None], "predicted")
    assert isinstance(a, DecomposedAttribution)
    ev = a.filters[0]
    fh, fw = capture(dec, x[None]).maps.shape[2:]
    cls = int(a.classes[0]) if a.classes else -1
    uniform = " (a 1x1 map is uniform: it cannot show where a filter fired)" if fh * fw == 1 else ""
    pixels = test.denormalise(x).clamp(0, 1).numpy()
    heat = a.heatmap[0].numpy()
    picture = filters_overlay(pixels, heat, list(ev.maps.numpy()), signed=True, scale=8, top=k)
    atomic_write_bytes(out_dir / "decomposed_explanation.png", to_png(picture))
    rows = "".join(
        f"<tr><td>{int(f)}</td><td>{float(c):+.3f}</td></tr>"
        for f, c in zip(ev.filters.tolist(), ev.contributions.tolist(), strict=True)
    )
    esc = html.escape
    listed = ", ".join(str(int(f)) for f in ev.filters.tolist())
    selectivity = report["selectivity"]["0.9"]
    psi = ", ".join(f"{c}: {v['psi_median']:.2f}" for c, v in selectivity.items())
    page = f"""<!doctype html>
<html><head><meta charset="utf-8"><title>decomposed final layer</title>
<style>body{{font-family:sans-serif;margin:1.5em}} td,th{{border:1px solid #ccc;padding:3px 8px}}
table{{border-collapse:collapse}} img{{image-rendering:pixelated;max-width:100%}}</style></head><body>
<h1>Decomposed final layer (Decomposing the Deep) on {esc(card.dataset)}</h1>
<p><b>Test accuracy: original {100 * result["original_accuracy"]:.2f} %, decomposed
{100 * result["decomposed_accuracy"]:.2f} %</b> ({result["images"]} test images; each class logit uses
only its k = {k} influential filters of {esc(report["layer"])}, found on {report["images"]} training
images: <a href="decomposed_indices.json">index file</a>).</p>
<p>Selectivity &Psi; at L1 mass 0.9 (median per class): {esc(psi)}</p>
<h2><code>decomposed</code> explanation of test image {shown} (true {esc(str(label))}, explained class
{cls})</h2>
<p>The first test image the decomposed model classifies correctly. Class map, then the activation maps of
filters {esc(listed)}, largest contribution first. Logit {a.stats["logit"][0]:.3f} = bias
{a.stats["bias"][0]:.3f} + the contributions below.</p>
<img src="decomposed_explanation.png">
<p><small>The filter maps are {fh}x{fw} at {esc(report["layer"].split(" ")[0])}, upsampled to the input
{x.shape[-2]}x{x.shape[-1]}{esc(uniform)}.</small></p>
<table><tr><th>filter</th><th>contribution W[c,f]&middot;h_f</th></tr>{rows}</table>
</body></html>
"""
    atomic_write_text(out_dir / PAGE, page)
    figures = {
        "k": k,
        "layer": report["layer"],
        "original_accuracy": result["original_accuracy"],
        "decomposed_accuracy": result["decomposed_accuracy"],
        "image": shown,
        "explained_class": cls,
        "filters": ev.filters.tolist(),
        "contributions": [float(v) for v in ev.contributions],
        "finite": bool(np.isfinite(heat).all()),
        "map_size": [int(fh), int(fw)],
    }
    atomic_write_text(out_dir / "decomposed.json", json.dumps(figures, indent=2) + "\n")
    return figures


def first_correct(model: Any, dataset: Any, limit: int = 100) -> int:
    """Index of the first of ``dataset``'s first ``limit`` images that ``model`` classifies correctly
    (0 when none is)."""
    import torch

    with torch.no_grad():
        for i in range(min(limit, len(dataset))):
            x, label = dataset[i]
            if int(model(x[None]).argmax(1)) == int(label):
                return i
    return 0
