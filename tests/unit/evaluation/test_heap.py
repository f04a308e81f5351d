"""keep_freed_memory: forward-pass-sized blocks freed and allocated again stop faulting pages in."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import pytest

SCRIPT = textwrap.dedent(
    """
    import resource, sys, torch
    from xai_serve.evaluation.heap import keep_freed_memory
    if sys.argv[1] == "keep":
        assert keep_freed_memory()
    def faults():
        return resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    def passes():  # three live 24 MiB activations per "pass", all freed at its end
        for _ in range(10):
            a = torch.ones(6 * 2**20); b = a + 1; c = b * 2
            del a, b, c
    passes()  # warm-up: the heap grows once
    before = faults()
    passes()
    print(faults() - before)
    """
)


def _faults(mode: str) -> int:
    out = subprocess.run([sys.executable, "-c", SCRIPT, mode], capture_output=True, text=True, check=True)
    return int(out.stdout.strip().splitlines()[-1])


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's allocator")
def test_freed_forward_blocks_are_reused_without_page_faults() -> None:
    pages_per_pass = 3 * 24 * 2**20 // 4096
    default, kept = _faults("default"), _faults("keep")
    assert default > 5 * pages_per_pass  # glibc trims the freed heap top and faults it in again
    assert kept < pages_per_pass  # kept: ten passes together fault in less than one pass did
