"""``make demo``: the main job on the built-in data."""

from __future__ import annotations


def run_demo() -> None:
    raise NotImplementedError("filled in by the foundation work")
