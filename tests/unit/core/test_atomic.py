"""The one atomic writer: a reader sees the old file or the whole new one, and a failed write leaves
neither a changed target nor a temporary file behind."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from xai_serve.atomic import atomic_copy, atomic_target, atomic_write_bytes, atomic_write_text
from xai_serve.hashing import file_sha256


def test_write_creates_parents_and_replaces(tmp_path: Path) -> None:
    target = tmp_path / "a" / "b" / "out.txt"
    atomic_write_text(target, "one")
    atomic_write_bytes(target, b"two")
    assert target.read_bytes() == b"two"
    assert stat.S_IMODE(os.stat(target).st_mode) == 0o644
    assert sorted(p.name for p in target.parent.iterdir()) == ["out.txt"]


def test_a_failed_write_keeps_the_old_file_and_leaves_no_temporary(tmp_path: Path) -> None:
    target = tmp_path / "out.bin"
    target.write_bytes(b"old")
    with pytest.raises(RuntimeError, match="disk"), atomic_target(target) as tmp:
        tmp.write_bytes(b"half of the new con")
        raise RuntimeError("disk full")
    assert target.read_bytes() == b"old"
    assert [p.name for p in tmp_path.iterdir()] == ["out.bin"]


def test_copy_is_byte_identical(tmp_path: Path) -> None:
    source = tmp_path / "src.bin"
    source.write_bytes(os.urandom(3 << 20))
    atomic_copy(source, tmp_path / "store" / "copy.bin")
    assert file_sha256(tmp_path / "store" / "copy.bin") == file_sha256(source)


def test_file_sha256_matches_hashlib(tmp_path: Path) -> None:
    import hashlib

    data = os.urandom((1 << 20) + 17)  # more than one read block
    (tmp_path / "f").write_bytes(data)
    assert file_sha256(tmp_path / "f") == hashlib.sha256(data).hexdigest()
