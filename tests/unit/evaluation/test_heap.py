"""keep_freed_memory: a forward-pass-sized block comes from the heap (not a fresh mmap) and stays there
after it is freed, so the next pass reuses its pages instead of faulting them in again. Read from glibc's
own bookkeeping (``mallinfo2``) in a fresh process: deterministic, unlike page-fault counts."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import pytest

SCRIPT = textwrap.dedent(
    """
    import ctypes, sys, torch
    from xai_serve.evaluation.heap import keep_freed_memory
    class Info(ctypes.Structure):
        _fields_ = [(n, ctypes.c_size_t) for n in (
            "arena", "ordblks", "smblks", "hblks", "hblkhd", "usmblks", "fsmblks", "uordblks", "fordblks",
            "keepcost")]
    libc = ctypes.CDLL("libc.so.6")
    libc.mallinfo2.restype = Info
    if sys.argv[1] == "keep":
        assert keep_freed_memory()
    a = torch.ones(6 * 2**20)  # a 24 MiB activation
    mapped = libc.mallinfo2().hblkhd  # bytes in blocks glibc got from mmap
    del a
    print(mapped, libc.mallinfo2().arena)  # and the heap glibc keeps after the free
    """
)
BLOCK = 24 * 2**20


def _info(mode: str) -> tuple[int, int]:
    out = subprocess.run([sys.executable, "-c", SCRIPT, mode], capture_output=True, text=True, check=True)
    mapped, arena = out.stdout.strip().splitlines()[-1].split()
    return int(mapped), int(arena)


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's allocator")
def test_forward_sized_blocks_come_from_the_kept_heap() -> None:
    mapped, _ = _info("default")
    assert mapped >= BLOCK  # glibc's default: a block this size is a fresh mmap, unmapped when freed
    mapped, arena = _info("keep")
    assert mapped < BLOCK  # kept: from the heap ...
    assert arena >= BLOCK  # ... which is not trimmed when the block is freed
