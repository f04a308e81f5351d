"""Progress bars in logs: when stderr is not a terminal the bars print plain lines (no carriage
return), on a terminal they stay tqdm's redrawn bars."""

from __future__ import annotations

import io
import subprocess
import sys

from tqdm import tqdm

from xai_serve.jobs.progress import LineProgress, progress

SCRIPT = r"""
import time
import xai_serve.jobs.progress as p

p.LINE_INTERVAL_S = 0.05
for _ in p.progress(range(6), desc="loop", unit="batch"):
    time.sleep(0.03)
with p.progress(total=4, initial=1, desc="parts", unit="part") as bar:
    for _ in range(3):
        time.sleep(0.03)
        bar.update(1)
        bar.set_postfix(loss="0.5")
for _ in p.progress(range(3), desc="hidden", leave=False):
    pass
for _ in p.progress(range(3), desc="off", enabled=False):
    pass
"""


def test_piped_stderr_gets_lines_without_carriage_returns() -> None:
    out = subprocess.run([sys.executable, "-c", SCRIPT], capture_output=True, timeout=120, check=True)
    err = out.stderr.decode()
    assert "\r" not in err and "\x1b" not in err
    lines = err.splitlines()
    assert all(line.strip() for line in lines), lines  # no blank lines either
    assert lines[0].startswith("loop: 0/6 batch") and any(
        line.startswith("loop: 6/6 batch") for line in lines
    )
    assert len([line for line in lines if line.startswith("loop:")]) >= 3  # periodic, not only start + end
    assert [line for line in lines if line.startswith("parts:")][-1].startswith("parts: 4/4 part")
    assert "loss=0.5" in err
    assert any(line.startswith("hidden: 3/3") for line in lines)  # a log keeps the last line
    assert "off:" not in err


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_terminal_keeps_the_redrawn_bar() -> None:
    stream = _Terminal()
    bar = progress(range(3), desc="t", file=stream)
    assert isinstance(bar, tqdm) and not isinstance(bar, LineProgress)
    list(bar)
    assert "\r" in stream.getvalue()
    assert isinstance(progress(range(3), desc="t", file=io.StringIO()), LineProgress)
