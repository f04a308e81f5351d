"""Dissection: IoU + beam search (length 3, beam 5) over a synthetic probing set the size of Broden's
ADE20K part (22,210 images, 112x112 masks, 1,000 concepts), packed bitsets (ours) vs a
straightforward dense-numpy implementation of the same algorithm; units/s, the full-layer time of a
512-unit layer (7x7 activations, memory-mapped) and peak memory.

Synthetic set (seeded): per image one scene label (of 300, Zipf-distributed) and a texture label (of 47,
half the images) as whole-image masks, 3 colour bands (of 11) covering the image, ~8 object (of 450)
and ~3 part (of 192) rectangles of random size, Zipf-distributed concept frequencies -- about 15
concepts per image as in ADE20K. Each unit's 7x7 activations are noise plus the pooled mask of one
planted concept. Quick mode runs the pipeline on 3,000 images and 64 units and extrapolates the full
layer linearly (units x images); full mode runs all 22,210 images and 512 units. The dense baseline
needs N x 112 x 112 bytes per concept mask, so it runs on a 16-image subset (all 1,000 concepts,
200 MB) and is compared with ours on that same subset (``same subset`` rows) and, extrapolated
linearly in the number of images (every dense operation costs N x H x W), at the pipeline's size.
The pipeline runs in a child process so that its peak RSS (``ru_maxrss``) is its own.
"""

from __future__ import annotations

import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

from bench.common import Measurement

SUITE = "dissection"
FULL_IMAGES = 22_210
FULL_UNITS = 512
SIZE = 112
N_SCENES, N_TEXTURES, N_COLOURS, N_OBJECTS, N_PARTS = 300, 47, 11, 450, 192
N_CONCEPTS = N_SCENES + N_TEXTURES + N_COLOURS + N_OBJECTS + N_PARTS  # 1,000
DENSE = "dense numpy beam search"


def _zipf_choice(rng: np.random.Generator, n: int, size: int | tuple[int, ...]) -> np.ndarray:
    p = 1.0 / np.arange(1, n + 1) ** 1.1
    return rng.choice(n, size=size, p=p / p.sum())


def make_store(n_images: int, seed: int = 0) -> Any:
    """The synthetic ConceptStore described in the module docstring."""
    from xai_serve.dissection import bitsets
    from xai_serve.dissection.concepts import FULL_ROW, ConceptStore

    rng = np.random.default_rng(seed)
    off_tex = N_SCENES
    off_col = off_tex + N_TEXTURES
    off_obj = off_col + N_COLOURS
    off_part = off_obj + N_OBJECTS
    images, concepts, rows_idx = [], [], []
    rows = [np.zeros(bitsets.words(SIZE * SIZE), np.uint64), bitsets.full_row(SIZE * SIZE)]
    img = np.arange(n_images)
    # scalar labels
    images += [img, img[rng.random(n_images) < 0.5]]
    concepts += [
        _zipf_choice(rng, N_SCENES, n_images),
        off_tex + _zipf_choice(rng, N_TEXTURES, len(images[1])),
    ]
    rows_idx += [np.full(n_images, FULL_ROW), np.full(len(images[1]), FULL_ROW)]
    # rectangles: colour bands (full height), objects, parts
    n_obj = rng.poisson(8, n_images).clip(1, 20)
    n_part = rng.poisson(3, n_images).clip(0, 10)
    rect_img = np.concatenate([np.repeat(img, 3), np.repeat(img, n_obj), np.repeat(img, n_part)])
    cuts = np.sort(rng.integers(1, SIZE, (n_images, 2)), axis=1)
    x0 = np.stack([np.zeros(n_images, int), cuts[:, 0], cuts[:, 1]], 1).reshape(-1)
    x1 = np.stack([cuts[:, 0], cuts[:, 1], np.full(n_images, SIZE)], 1).reshape(-1)
    col = off_col + rng.integers(0, N_COLOURS, 3 * n_images)
    k = int(n_obj.sum() + n_part.sum())
    h = rng.integers(8, 80, k)
    w = rng.integers(8, 80, k)
    y0r = rng.integers(0, SIZE - h + 1)
    x0r = rng.integers(0, SIZE - w + 1)
    obj = np.concatenate(
        [
            off_obj + _zipf_choice(rng, N_OBJECTS, int(n_obj.sum())),
            off_part + _zipf_choice(rng, N_PARTS, int(n_part.sum())),
        ]
    )
    ry0 = np.concatenate([np.zeros(3 * n_images, int), y0r])
    ry1 = np.concatenate([np.full(3 * n_images, SIZE), y0r + h])
    rx0 = np.concatenate([x0, x0r])
    rx1 = np.concatenate([x1, x0r + w])
    rc = np.concatenate([col, obj])
    # drop repeated (image, concept) pairs (keep the first rectangle)
    _, first = np.unique(rect_img * N_CONCEPTS + rc, return_index=True)
    first.sort()
    ar = np.arange(SIZE)
    packed = []
    for lo in range(0, first.size, 4096):
        sel = first[lo : lo + 4096]
        ys = (ar >= ry0[sel, None]) & (ar < ry1[sel, None])
        xs = (ar >= rx0[sel, None]) & (ar < rx1[sel, None])
        packed.append(bitsets.pack(ys[:, :, None] & xs[:, None, :]))
    base = len(rows)
    all_rows = np.concatenate([np.stack(rows), *packed])
    images.append(rect_img[first])
    concepts.append(rc[first])
    rows_idx.append(base + np.arange(first.size))
    names = [f"concept{i}" for i in range(N_CONCEPTS)]
    cats = (
        ["scene"] * N_SCENES
        + ["texture"] * N_TEXTURES
        + ["color"] * N_COLOURS
        + ["object"] * N_OBJECTS
        + ["part"] * N_PARTS
    )
    return ConceptStore.from_entries(
        names,
        cats,
        (SIZE, SIZE),
        all_rows,
        np.concatenate(images),
        np.concatenate(concepts),
        np.concatenate(rows_idx),
        n_images=n_images,
    )


def make_activations(store: Any, n_units: int, path: Path, seed: int = 1) -> np.ndarray:
    """(N, n_units, 7, 7) float32 memory map: noise + 3 x the 16x16-pooled mask of a planted concept."""
    from xai_serve.dissection import bitsets

    rng = np.random.default_rng(seed)
    n = store.n_images
    feats = np.lib.format.open_memmap(path, mode="w+", dtype=np.float32, shape=(n, n_units, 7, 7))
    for lo in range(0, n, 2048):
        feats[lo : lo + 2048] = rng.standard_normal((min(n, lo + 2048) - lo, n_units, 7, 7), dtype=np.float32)
    frequent = np.argsort(-store.counts)[: max(n_units, 1) * 2]
    planted = rng.choice(frequent, n_units, replace=False)
    for u, c in enumerate(planted):
        imgs = store.images_of(int(c))
        for lo in range(0, imgs.size, 2048):
            sel = imgs[lo : lo + 2048]
            dense = (
                bitsets.unpack(store.bits(int(c), sel), (SIZE, SIZE))
                .reshape(-1, 7, 16, 7, 16)
                .mean(axis=(2, 4))
            )
            feats[sel, u] += 3.0 * dense.astype(np.float32)
    feats.flush()
    return np.load(path, mmap_mode="r")


def pipeline(n_images: int, n_units: int, seed: int = 0) -> dict[str, Any]:
    """Set up, then time thresholds + unit masks + beam search for ``n_units`` units (parts of 32)."""
    from xai_serve.dissection import Searcher, thresholds, unit_masks

    t0 = time.perf_counter()
    store = make_store(n_images, seed)
    with tempfile.TemporaryDirectory() as tmp:
        feats = make_activations(store, n_units, Path(tmp) / "acts.npy", seed + 1)
        setup = time.perf_counter() - t0
        t1 = time.perf_counter()
        thr = thresholds(feats)
        t_thr = time.perf_counter() - t1
        searcher = Searcher(store, max_length=3, beam=5)
        t_masks = t_search = 0.0
        ious = []
        for lo in range(0, n_units, 32):
            t2 = time.perf_counter()
            masks = unit_masks(feats, range(lo, min(n_units, lo + 32)), thr, store.shape)
            t3 = time.perf_counter()
            ious += [r.iou for r in searcher.run(masks)]
            t_masks += t3 - t2
            t_search += time.perf_counter() - t3
        active = float(np.mean([m.images.size for m in masks.values()]))
    return {
        "images": n_images,
        "units": n_units,
        "entries": int(store.entry_row.size),
        "concept_store_mib": (store.rows.nbytes + store.loc.nbytes) / 2**20,
        "setup_s": setup,
        "thresholds_s": t_thr,
        "masks_s": t_masks,
        "search_s": t_search,
        "mean_iou": float(np.mean(ious)),
        "mean_active_images": active,
        "peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
    }


def _subset_dense(store: Any, n_sub: int) -> list[np.ndarray]:
    from xai_serve.dissection import bitsets

    sel = np.arange(n_sub)
    return [bitsets.unpack(store.bits(c, sel), store.shape) for c in range(store.n_concepts)]


def compare_subset(n_sub: int, n_units: int, seed: int = 0) -> dict[str, Any]:
    """Ours and the dense baseline on the same first ``n_sub`` images and ``n_units`` units."""
    from xai_serve.dissection import ConceptStore, Searcher, UnitMask, best_formula  # noqa: F401
    from xai_serve.dissection.dense import dense_best_formula
    from xai_serve.dissection.units import thresholds, upsample

    full = make_store(n_sub, seed)
    rng = np.random.default_rng(seed + 2)
    feats = rng.standard_normal((n_sub, n_units, 7, 7)).astype(np.float32)
    for u in range(n_units):  # plant a frequent concept per unit
        c = int(np.argsort(-full.counts)[u])
        imgs = full.images_of(c)
        from xai_serve.dissection import bitsets

        dense = bitsets.unpack(full.bits(c, imgs), (SIZE, SIZE)).reshape(-1, 7, 16, 7, 16).mean(axis=(2, 4))
        feats[imgs, u] += 3.0 * dense
    thr = thresholds(feats, 0.05)  # 5% on so few images, so that units fire somewhere
    unit_dense = [upsample(feats[:, u], (SIZE, SIZE)) > thr[u] for u in range(n_units)]
    concepts = _subset_dense(full, n_sub)
    names = full.names
    t0 = time.perf_counter()
    dense_out = [dense_best_formula(m, concepts, 3, 5, names=names) for m in unit_dense]
    t_dense = time.perf_counter() - t0
    searcher = Searcher(full, max_length=3, beam=5)
    t1 = time.perf_counter()
    ours = searcher.run({u: UnitMask.from_dense(m) for u, m in enumerate(unit_dense)})
    t_ours = time.perf_counter() - t1
    agree = all(o.formula == d[0] and abs(o.iou - d[1]) < 1e-9 for o, d in zip(ours, dense_out, strict=True))
    return {
        "images": n_sub,
        "units": n_units,
        "dense_s": t_dense,
        "ours_s": t_ours,
        "agree": agree,
        "dense_mib": sum(c.nbytes for c in concepts) / 2**20,
    }


def extraction(n_images: int, batch: int = 32) -> dict[str, Any]:
    """ResNet-18 (random weights) forward passes at 224x224 with a hook on layer4, into a memory map
    (the `xai dissect` activation step), in images/s."""
    import torch

    from xai_serve.models import create_model

    torch.manual_seed(0)
    model = create_model("resnet18", num_classes=365).eval()
    feats: list[torch.Tensor] = []
    model.layer4.register_forward_hook(lambda _m, _i, o: feats.append(o))
    x = torch.randn(batch, 3, 224, 224)
    with torch.no_grad():
        model(x[:2])  # warm-up
        t0 = time.perf_counter()
        done = 0
        while done < n_images:
            model(x)
            done += batch
        seconds = time.perf_counter() - t0
    return {
        "images": done,
        "seconds": seconds,
        "threads": torch.get_num_threads(),
        "layer4_shape": list(feats[-1].shape[1:]),
    }


def _child(fn: str, **kwargs: Any) -> dict[str, Any]:
    code = f"import json, bench.dissection as d; print(json.dumps(d.{fn}(**{kwargs!r})))"
    root = Path(__file__).resolve().parents[1]
    out = subprocess.run([sys.executable, "-c", code], cwd=root, capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def run(quick: bool) -> list[Measurement]:
    n_images, n_units = (3_000, 64) if quick else (FULL_IMAGES, FULL_UNITS)
    sub = _child("compare_subset", n_sub=16, n_units=4 if quick else 8)
    pipe = _child("pipeline", n_images=n_images, n_units=n_units)
    case_sub = f"same subset: {sub['images']} images x 112x112, {N_CONCEPTS} concepts, {sub['units']} units"
    case = f"{n_images} images x 112x112, {N_CONCEPTS} concepts, {n_units} units, length 3 beam 5"
    ours_sub = sub["units"] / sub["ours_s"]
    dense_sub = sub["units"] / sub["dense_s"]
    per_unit = (pipe["masks_s"] + pipe["search_s"]) / n_units  # thresholds counted separately
    ours_rate = 1.0 / per_unit
    dense_rate = dense_sub * sub["images"] / n_images  # linear in N (dense cost is N x H x W per candidate)
    scale_n = FULL_IMAGES / n_images
    full_s = (pipe["thresholds_s"] * FULL_UNITS / n_units + per_unit * FULL_UNITS) * scale_n
    ext = _child("extraction", n_images=32 if quick else 512)
    extract_full_s = ext["seconds"] / ext["images"] * FULL_IMAGES
    common = {"pipeline": pipe, "subset": sub}
    rows = [
        Measurement(
            SUITE,
            case_sub,
            "ours packed bitsets (same subset)",
            "units/s",
            ours_sub,
            baseline=DENSE,
            extra={**common, "agree_with_dense": sub["agree"]},
        ),
        Measurement(
            SUITE, case_sub, DENSE, "units/s", dense_sub, extra={"dense_concepts_mib": sub["dense_mib"]}
        ),
        Measurement(
            SUITE,
            case,
            "ours packed bitsets",
            "units/s",
            ours_rate,
            baseline=DENSE + " (extrapolated)",
            target=">= 20x",
            extra=common,
        ),
        Measurement(
            SUITE,
            case,
            DENSE + " (extrapolated)",
            "units/s",
            dense_rate,
            extra={"from": f"{sub['images']}-image subset, x {sub['images']}/{n_images}"},
        ),
        Measurement(
            SUITE,
            case,
            "full layer (512 units, 22,210 images) " + ("extrapolated" if quick else "measured"),
            "s",
            full_s,
            target="< 1800 s",
            met=full_s < 1800,
            extra={"thresholds_s": pipe["thresholds_s"]},
        ),
        Measurement(
            SUITE,
            "resnet18 224x224 layer4, batch 32",
            "activation extraction, full set (extrapolated)",
            "s",
            extract_full_s,
            extra={
                **ext,
                "note": "not part of the 30-minute IoU + search target; add it to the row above for a "
                "whole `xai dissect run` (measured with random weights and random images)",
            },
        ),
        Measurement(
            SUITE,
            case,
            "peak memory (pipeline process)",
            "MiB",
            pipe["peak_rss_mib"],
            target="< 8192 MiB",
            met=pipe["peak_rss_mib"] < 8192,
            extra={
                "note": "quick mode: at 3,000 images; the full set has 7.4x the concept store and activations"
                if quick
                else "full size"
            },
        ),
    ]
    return rows


if __name__ == "__main__":  # pragma: no cover
    import argparse

    p = argparse.ArgumentParser()
    p.add_argument("--quick", action="store_true")
    args = p.parse_args()
    for r in run(args.quick):
        print(json.dumps(r.as_dict()))
