"""Suite ``saliency-images`` (docs/methods.md#saliency-post-processing): the images the SimpleNet
study's ``save_gradient_images`` writes.

Per sample and method, the map's four renderings (:mod:`xai_client.saliency`, one copy of the study's
post-processing): colour (min-max normalised map), grey-scale (Σ_c |g| clipped at the 99th
percentile), positive and negative saliency, each min-max normalised to uint8 PNG under ``images/``.
With ``seed_names`` the files are ``<name>_Guided_BP_color.png``, ``<name>_Guided_BP_gray.png``,
``<name>_pos_sal.png``, ``<name>_neg_sal.png`` (``<name>`` = ``<position>_<dataset index>_<method>``);
otherwise ``<name>_color.png``, ``_gray``, ``_pos``, ``_neg``. ``images.json`` lists every file.
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from xai_client.saliency import SEED_SUFFIXES, seed_images

from xai_serve.atomic import atomic_write_bytes
from xai_serve.errors import InvalidParameterError
from xai_serve.evaluation.batches import concat, run_batches
from xai_serve.evaluation.options import opt
from xai_serve.evaluation.registry import Suite, register_suite
from xai_serve.evaluation.store import write_json
from xai_serve.jobs.rundir import RunDir

if TYPE_CHECKING:
    from xai_serve.evaluation.context import EvalContext


@dataclass
class SaliencyImagesOptions:
    target: str = opt("true", "class explained: true | predicted")
    seed_names: bool = opt(True, "name files as the study: NAME_Guided_BP_color/_gray, NAME_pos_sal/_neg_sal")
    batch_size: int = opt(16, "images per stored batch")


PLAIN_SUFFIXES = {seed: f"_{kind}" for kind, seed in SEED_SUFFIXES.items()}


def _png(img: np.ndarray) -> bytes:
    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(img[..., 0] if img.ndim == 3 and img.shape[-1] == 1 else img).save(buf, format="PNG")
    return buf.getvalue()


def run_saliency_images(
    ctx: EvalContext, run: RunDir, opts: SaliencyImagesOptions, seed: int
) -> dict[str, Any]:
    methods = list(ctx.attributions)
    if not methods:
        raise InvalidParameterError("saliency-images needs at least one method")

    def compute(i: int, sl: slice) -> dict[str, np.ndarray]:
        x, y = ctx.batch(sl)
        t = ctx.targets(x, y, opts.target)
        for m in methods:
            maps = ctx.attributions[m](x, t).detach().cpu().numpy()
            for j in range(x.shape[0]):
                name = f"{sl.start + j:04d}_{int(ctx.indices[sl][j])}_{m}"
                for suffix, img in seed_images(maps[j]).items():
                    suffix = suffix if opts.seed_names else PLAIN_SUFFIXES[suffix]
                    atomic_write_bytes(run.path("images", f"{name}{suffix}.png"), _png(img))
        return {"index": ctx.indices[sl].numpy(), "target": t.cpu().numpy()}

    parts = run_batches(run, ctx, opts.batch_size, compute, "saliency-images")
    index, target = concat(parts, "index"), concat(parts, "target")
    suffixes = list(SEED_SUFFIXES.values()) if opts.seed_names else list(PLAIN_SUFFIXES.values())
    files: list[dict[str, Any]] = [
        {
            "index": int(index[j]),
            "target": int(target[j]),
            "method": m,
            "files": [f"images/{j:04d}_{int(index[j])}_{m}{s}.png" for s in suffixes],
        }
        for m in methods
        for j in range(index.size)
    ]
    write_json(run.path("images.json"), {"seed": seed, "seed_names": opts.seed_names, "images": files})
    return {"n": int(index.size), "methods": methods, "files": sum(len(f["files"]) for f in files)}


def verdict(root: Path) -> str | None:
    """How many maps were exported, and which are blank (a constant map renders as one grey level)."""
    import json

    import numpy as np
    from PIL import Image

    path = root / "images.json"
    if not path.exists():
        return None
    entries = json.loads(path.read_text())["images"]
    blank: dict[str, int] = {}
    for e in entries:
        with Image.open(root / e["files"][0]) as im:  # the colour rendering
            a = np.asarray(im)
        if a.size and int(a.max()) == int(a.min()):
            blank[e["method"]] = blank.get(e["method"], 0) + 1
    methods = list(dict.fromkeys(e["method"] for e in entries))
    n = len({e["index"] for e in entries})
    files = sum(len(e["files"]) for e in entries)
    text = (
        f"{files} PNGs for {n} samples and {len(methods)} method(s) ({', '.join(methods)}): colour, "
        "grey-scale (P99-clipped), positive and negative saliency per sample, listed in images.json."
    )
    if blank:
        text += " <b>Constant maps</b> (rendered blank): " + ", ".join(
            f"{m} {k}/{n}" for m, k in blank.items()
        )
        text += "."
    else:
        text += " No map is constant."
    return text


SUITE = register_suite(
    Suite(
        name="saliency-images",
        help="The SimpleNet study's exports per sample and method: colour, grey-scale (P99-clipped), "
        "positive and "
        "negative saliency PNGs.",
        options=SaliencyImagesOptions,
        run=run_saliency_images,
        defaults={"samples": 8, "methods": ["guided_backprop"]},
        verdict=verdict,
    )
)
