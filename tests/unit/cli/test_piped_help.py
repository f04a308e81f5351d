"""`xai ... --help | cat`: piped help is plain text (no ANSI escape, no box drawing) and complete
(every option name whole, every command's summary whole), for every command of the tree."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import typer

from xai_serve.cli import app

BOX_DRAWING = re.compile("[\u2500-\u257f]")


def _tree() -> list[tuple[list[str], Any]]:
    found: list[tuple[list[str], Any]] = []

    def walk(cmd: Any, path: list[str]) -> None:
        found.append((path, cmd))
        for name, sub in (getattr(cmd, "commands", None) or {}).items():
            walk(sub, [*path, name])

    walk(typer.main.get_command(app), [])
    return found


def _piped_help(path: list[str]) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k not in ("COLUMNS", "FORCE_COLOR", "TERMINAL_WIDTH")}
    return subprocess.run(
        [sys.executable, "-m", "xai_serve.cli", *path, "--help"],
        capture_output=True,  # stdout is a pipe, as in `xai --help | cat`
        text=True,
        timeout=120,
        env=env,
    )


def _whole(word: str, text: str) -> bool:
    return re.search(rf"(?<![\w-]){re.escape(word)}(?![\w-])", text) is not None


def test_piped_help_is_plain_and_complete() -> None:
    tree = _tree()
    assert len(tree) > 20
    with ThreadPoolExecutor(4) as pool:
        results = list(pool.map(_piped_help, [path for path, _ in tree]))
    checked: set[str] = set()
    for (path, cmd), res in zip(tree, results, strict=True):
        name = " ".join(["xai", *path])
        out = res.stdout
        assert res.returncode == 0, (name, res.stderr)
        assert "\x1b" not in out, name
        assert not BOX_DRAWING.search(out), name
        assert out.startswith("Usage: "), name
        options = [p for p in cmd.params if p.param_type_name == "option" and not p.hidden]
        assert _whole("--help", out), name
        for param in options:
            for opt in [*param.opts, *param.secondary_opts]:
                checked.add(opt)
                assert _whole(opt, out), f"{name}: {opt} missing or cut"
        flat = " ".join(re.sub(r"-\n\s+", "-", out).split())  # click wraps after a hyphen
        for sub_name, sub in (getattr(cmd, "commands", None) or {}).items():
            summary = " ".join((sub.help or "").strip().split("\n\n")[0].split())
            assert _whole(sub_name, out) and summary in flat, f"{name}: {sub_name}'s summary cut"
    assert {"--units-per-part", "--overwrite", "--no-overwrite", "--checkpoint"} <= checked
