"""A dissection run of one layer: prepare, resumable parts per unit range, shard, merge.

The run directory is a :class:`~xai_serve.jobs.rundir.RunDir` with JSON parts; its files are listed in
:mod:`xai_serve.dissection.layout`. Units are independent: part ``i`` covers units ``[i*P, (i+1)*P)``;
``--shard K/N`` runs the parts with ``i % N == K`` (:class:`~xai_serve.jobs.shard.Shard`); ``workers``
runs them in separate processes; a killed run continues where it stopped (finished parts are kept, a
half-written file is only ever a temporary) and the merged outputs are identical to one uninterrupted
run. Nothing in a part depends on the others, so any batch backend (in-process, shards, Ray) can run
:func:`run_part` for each part and call :func:`merge`.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from xai_serve.atomic import atomic_write_bytes, atomic_write_text
from xai_serve.dissection import activations as acts
from xai_serve.dissection.concepts import ConceptStore
from xai_serve.dissection.layout import (
    CONCEPTS,
    REPORT,
    RESULTS,
    SUMMARY,
    THRESHOLDS,
    part_name,
    part_ranges,
)
from xai_serve.dissection.search import Searcher
from xai_serve.dissection.units import DEFAULT_QUANTILE, thresholds, unit_masks
from xai_serve.errors import InvalidArgumentError, InvalidParameterError
from xai_serve.jobs.rundir import RECORD_PARTS, RUN_FILE, RunDir
from xai_serve.jobs.shard import Shard


@dataclass
class DissectConfig:
    checkpoint: str
    broden: str
    layer: str
    index: str = "index.csv"
    which: str = "best"
    quantile: float = DEFAULT_QUANTILE
    max_length: int = 3
    beam: int = 5
    penalty: float = 1.0
    units_per_part: int = 16
    top_images: int = 4
    limit: int | None = None
    batch_size: int = 64
    weights_sha256: str = ""  # filled by open_run: a continued run must use the same weights

    def check(self) -> None:
        if not 0.0 < self.quantile < 1.0:
            raise InvalidParameterError(f"quantile must be in (0, 1), got {self.quantile}")
        if self.max_length < 1 or self.beam < 1 or self.units_per_part < 1 or self.batch_size < 1:
            raise InvalidParameterError("max-length, beam, units-per-part and batch-size must be >= 1")
        if not 0.0 < self.penalty <= 1.0:
            raise InvalidParameterError(f"penalty must be in (0, 1], got {self.penalty}")

    def key(self) -> dict[str, Any]:
        """What must match for parts to be reused (batch_size does not change the results)."""
        d = asdict(self)
        d.pop("batch_size")
        return d


def shard_ranges(ranges: list[tuple[int, int]], shard: Shard | None) -> list[tuple[int, int]]:
    """The unit ranges of the parts ``shard`` computes (every part without one)."""
    return [r for i, r in enumerate(ranges) if shard is None or shard.owns(i)]


# ---------------------------------------------------------------------- preparation
def open_run(out: Path, config: DissectConfig, *, overwrite: bool = False, shared: bool = False) -> RunDir:
    """Create the run in ``out`` or continue the one there, which must have the same configuration
    (``config.weights_sha256`` is filled from the checkpoint when empty). ``overwrite`` replaces a run;
    ``shared``: one of several processes filling the run at once (a shard: nothing is removed)."""
    config.check()
    if not config.weights_sha256:
        config.weights_sha256 = _weights_sha256(config)
    if shared:
        return RunDir.open_shared(out, config.key(), parts=RECORD_PARTS)
    return RunDir.open(out, config.key(), resume=not overwrite, overwrite=overwrite, parts=RECORD_PARTS)


def prepare(out: Path, config: DissectConfig, log: Callable[[str], None] = print) -> None:
    """Activations, thresholds and the concept store (each skipped when already complete)."""
    from xai_serve.data.broden import BrodenDataset

    dataset = BrodenDataset(config.broden, index=config.index, limit=config.limit)
    if not acts.exists(out):
        from xai_serve.models import load_checkpoint

        model, card = load_checkpoint(config.checkpoint, config.which)  # type: ignore[arg-type]
        log(f"activations of {config.layer} for {len(dataset)} images")
        acts.extract(model, card, dataset, config.layer, out, batch_size=config.batch_size)
    if not (out / THRESHOLDS).is_file():
        t = thresholds(acts.load(out), config.quantile)
        _save_npy(out / THRESHOLDS, t)
    if not (out / CONCEPTS / "concepts.json").is_file():
        log(f"concept masks of {len(dataset.names)} concepts")
        ConceptStore.from_dataset(dataset).save(out / CONCEPTS)


def _weights_sha256(config: DissectConfig) -> str:
    from xai_serve.hashing import file_sha256
    from xai_serve.models.checkpoint import WEIGHT_FILES

    path = Path(config.checkpoint) / WEIGHT_FILES.get(config.which, "")
    if not path.is_file():
        from xai_serve.errors import CheckpointError

        raise CheckpointError(f"{config.checkpoint} has no {path.name} (which={config.which!r})")
    return file_sha256(path)


def _save_npy(path: Path, array: np.ndarray) -> None:
    import io

    buf = io.BytesIO()
    np.save(buf, array)
    atomic_write_bytes(path, buf.getvalue())


# ---------------------------------------------------------------------- parts
def run_part(out: str | os.PathLike[str], lo: int, hi: int) -> str:
    """Compute units ``lo..hi-1`` of the prepared run in ``out``; write their part atomically (the
    report pieces first, the part JSON last). Returns the part's path."""
    from xai_serve.dissection import report

    out = Path(out)
    run = RunDir.existing(out, parts=RECORD_PARTS)
    config = DissectConfig(**run.config)
    name = part_name(lo, hi)
    if run.has_part(name):
        return str(run.part_path(name))
    store = ConceptStore.load(out / CONCEPTS)
    feats = acts.load(out)
    t = np.load(out / THRESHOLDS)
    masks = unit_masks(feats, range(lo, hi), t, store.shape)
    searcher = Searcher(store, max_length=config.max_length, beam=config.beam, penalty=config.penalty)
    results = searcher.run(masks)
    block = np.asarray(feats[:, lo:hi], np.float32)
    peaks = block.reshape(block.shape[0], block.shape[1], -1).max(axis=2)
    units = []
    category = dict(zip(store.names, store.categories, strict=True))
    for r in results:
        top = np.argsort(-peaks[:, r.unit - lo], kind="stable")[: config.top_images]
        entry = asdict(r)
        entry["mask_pixels"] = masks[r.unit].total
        entry["threshold"] = float(t[r.unit])
        entry["top_images"] = [int(i) for i in top]
        entry["category"] = category.get(r.single, "")
        units.append(entry)
    report.write_unit_range(out, config, lo, hi, units, feats, t, store.shape)
    run.save_part(name, {"lo": lo, "hi": hi, "units": units})
    return str(run.part_path(name))


def missing_parts(
    run: RunDir, n_units: int, per_part: int, shard: Shard | None = None
) -> list[tuple[int, int]]:
    """The unit ranges of ``shard``'s parts (every part without one) not done yet."""
    return [r for r in shard_ranges(part_ranges(n_units, per_part), shard) if not run.has_part(part_name(*r))]


def _run_part_star(args: tuple[str, int, int]) -> str:
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    return run_part(*args)


def run_parts(
    out: Path,
    ranges: list[tuple[int, int]],
    *,
    workers: int = 1,
    log: Callable[[str], None] = print,
) -> None:
    """Run ``ranges`` in this process (``workers`` 1) or in a pool of processes."""
    if not ranges:
        return
    jobs = [(str(out), lo, hi) for lo, hi in ranges]
    if workers <= 1:
        for i, job in enumerate(jobs, 1):
            run_part(*job)
            log(f"part {i}/{len(jobs)}: units {job[1]}..{job[2] - 1}")
        return
    import multiprocessing as mp

    # fork where available: the children only run numpy (no torch), and skip re-importing the package
    method = "fork" if "fork" in mp.get_all_start_methods() else "spawn"
    with mp.get_context(method).Pool(workers) as pool:
        for i, path in enumerate(pool.imap_unordered(_run_part_star, jobs), 1):
            log(f"part {i}/{len(jobs)}: {Path(path).stem}")


# ---------------------------------------------------------------------- merge
def merge(out: str | os.PathLike[str]) -> dict[str, Any]:
    """Join every part of ``out`` into results.csv, history.log, report.html and summary.json (atomic);
    fails naming the missing unit ranges when some part is absent."""
    from xai_serve.dissection import report

    out = Path(out)
    if not (out / RUN_FILE).is_file() or not acts.exists(out):
        raise InvalidArgumentError(f"{out} is not a prepared dissection run (no {RUN_FILE} / activations)")
    run = RunDir.existing(out, parts=RECORD_PARTS)
    config = DissectConfig(**run.config)
    n_units = _n_units(out)
    missing = missing_parts(run, n_units, config.units_per_part)
    if missing:
        names = ", ".join(f"{lo}..{hi - 1}" for lo, hi in missing[:10])
        names += ", ..." if len(missing) > 10 else ""
        raise InvalidArgumentError(
            f"{out}: {len(missing)} unit range(s) not done yet ({names}); "
            "run the remaining shards (or the run without --shard) first"
        )
    units: list[dict[str, Any]] = []
    for lo, hi in part_ranges(n_units, config.units_per_part):
        units += run.load_part(part_name(lo, hi))["units"]
    units.sort(key=lambda u: u["unit"])
    report.write_results(out, config, units, n_units)
    ious = [u["iou"] for u in units]
    summary = {
        "layer": config.layer,
        "units": n_units,
        "mean_iou": float(np.mean(ious)) if ious else 0.0,
        "mean_single_iou": float(np.mean([u["single_iou"] for u in units])) if units else 0.0,
        "interpretable_units": int(sum(v >= report.SCORE_THRESHOLD for v in ious)),
        "results": RESULTS,
        "report": REPORT,
    }
    atomic_write_text(out / SUMMARY, json.dumps(summary, indent=1, sort_keys=True) + "\n")
    return summary


def _n_units(out: Path) -> int:
    return int(json.loads((out / acts.ACTIVATIONS_META).read_text())["shape"][1])


def dissect(
    out: str | os.PathLike[str],
    config: DissectConfig,
    *,
    shard: Shard | None = None,
    workers: int = 1,
    overwrite: bool = False,
    log: Callable[[str], None] = print,
) -> dict[str, Any] | None:
    """The whole job: open/continue the run, prepare, run this shard's missing parts, and merge when
    every part exists (a shard that is not the last to finish leaves the merge to `xai dissect merge`)."""
    out = Path(out)
    run = open_run(out, config, overwrite=overwrite, shared=shard is not None)
    prepare(out, config, log)
    n_units = _n_units(out)
    todo = missing_parts(run, n_units, config.units_per_part, shard)
    total = len(shard_ranges(part_ranges(n_units, config.units_per_part), shard))
    log(f"{n_units} units in {total} part(s) for this run; {total - len(todo)} already done")
    run_parts(out, todo, workers=workers, log=log)
    if missing_parts(run, n_units, config.units_per_part):
        log("other shards' parts are missing: run them, then `xai dissect merge " + str(out) + "`")
        return None
    return merge(out)
