"""The one run-directory layout of the batch jobs: the run record, parts of either format as
completion marks, continuing (same configuration only), overwriting, shared runs, torn writes."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from xai_serve.errors import InvalidArgumentError
from xai_serve.jobs.rundir import ARRAY_PARTS, PARTS, RECORD_PARTS, RUN_FILE, RunDir, npz_bytes, read_record


def test_record_and_array_parts(tmp_path: Path) -> None:
    run = RunDir.open(tmp_path / "r", {"seed": 7, "kinds": ("a", "b")})
    record = json.loads((tmp_path / "r" / RUN_FILE).read_text())
    assert record["config"] == {"seed": 7, "kinds": ["a", "b"]} and record["seed"] == 7
    assert {"xai_serve", "torch", "numpy", "python"} <= set(record["versions"])
    assert run.missing_parts(["b0", "b1"]) == ["b0", "b1"]
    run.save_part("b1", {"x": np.arange(4.0), "y": np.eye(2, dtype=np.int8)})
    assert run.part_path("b1") == tmp_path / "r" / PARTS / "b1.npz"
    assert run.missing_parts(["b0", "b1"]) == ["b0"]
    part = run.load_part("b1")
    assert part["x"].tolist() == [0, 1, 2, 3] and part["y"].dtype == np.int8
    # the same arrays give the same bytes (shards and backends are compared byte for byte)
    assert run.part_path("b1").read_bytes() == npz_bytes({"x": np.arange(4.0), "y": np.eye(2, dtype=np.int8)})
    # continuing with the same configuration (a tuple equals the list run.json gives back)
    assert RunDir.open(tmp_path / "r", {"seed": 7, "kinds": ("a", "b")}, resume=True).has_part("b1")


def test_record_parts_and_existing(tmp_path: Path) -> None:
    run = RunDir.open(tmp_path / "d", {"layer": "l"}, parts=RECORD_PARTS)
    assert "seed" not in read_record(tmp_path / "d")  # only a seeded job records one
    run.save_part("units_00000-00004", {"lo": 0, "units": [{"iou": 0.25}]})
    assert (tmp_path / "d" / PARTS / "units_00000-00004.json").is_file()
    again = RunDir.existing(tmp_path / "d", parts=RECORD_PARTS)
    assert again.config == {"layer": "l"}
    assert again.load_part("units_00000-00004") == {"lo": 0, "units": [{"iou": 0.25}]}
    with pytest.raises(InvalidArgumentError, match=r"no run\.json"):
        RunDir.existing(tmp_path / "nothing")
    assert read_record(tmp_path / "nothing") == {}


def test_continue_overwrite_and_refusals(tmp_path: Path) -> None:
    root = tmp_path / "r"
    run = RunDir.open(root, {"seed": 1, "samples": 4})
    run.save_part("b0", {"a": np.zeros(1)})
    with pytest.raises(InvalidArgumentError, match=r"different configuration \(differs in: samples, seed\)"):
        RunDir.open(root, {"seed": 2, "samples": 5}, resume=True)
    with pytest.raises(InvalidArgumentError, match="--resume"):
        RunDir.open(root, {"seed": 1, "samples": 4})
    torn = root / PARTS / ".b1.npz.123.tmp"
    torn.write_bytes(b"half a file")
    RunDir.open(root, {"seed": 1, "samples": 4}, resume=True)
    assert not torn.exists()  # a torn write of the interrupted run is removed when it continues
    assert RunDir.open(root, {"seed": 1}, resume=False, overwrite=True).missing_parts(["b0"]) == ["b0"]
    (tmp_path / "busy").mkdir()
    (tmp_path / "busy" / "notes.txt").write_text("mine")
    with pytest.raises(InvalidArgumentError, match="not empty"):
        RunDir.open(tmp_path / "busy", {"seed": 1}, resume=True)


def test_shared_runs_agree_and_keep_temporaries(tmp_path: Path) -> None:
    root = tmp_path / "s"
    RunDir.open_shared(root, {"seed": 1}).save_part("b0", {"a": np.ones(2)})
    in_progress = root / PARTS / ".b1.npz.9.tmp"
    in_progress.write_bytes(b"another shard writing")
    assert RunDir.open_shared(root, {"seed": 1}).has_part("b0")
    assert in_progress.exists()
    with pytest.raises(InvalidArgumentError, match="shards of one job must agree"):
        RunDir.open_shared(root, {"seed": 2})
    assert ARRAY_PARTS.suffix == ".npz" and RECORD_PARTS.suffix == ".json"
