"""The suite registry: one name -> one evaluation suite (torch-free, so ``xai --help`` stays fast).

A suite is one module in :mod:`xai_serve.evaluation.suites` that calls :func:`register_suite`
with its options dataclass (fields declared with :func:`~xai_serve.evaluation.options.opt` become
command-line options), its run function ``run(ctx, run_dir, options, seed) -> dict`` and its
report verdict ``verdict(run_dir) -> str | None``. Every declared suite becomes
``xai evaluate NAME`` with the shared options of :class:`~xai_serve.evaluation.options.CommonOptions`
(and :class:`~xai_serve.evaluation.options.MethodOptions` when it evaluates methods), runs on every
backend (in-process, ``--shard K/N``, Ray) and gets a report: adding a suite is one module, with
no other edit.
"""

from __future__ import annotations

import importlib
import pkgutil
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from xai_serve.errors import InvalidParameterError


@dataclass(frozen=True)
class Suite:
    """What the CLI, the runner and the backends need to know about a suite."""

    name: str  # CLI name, e.g. "feature-removal"
    help: str  # shown by `xai evaluate NAME --help` (first line: in `xai evaluate --help`)
    options: type  # dataclass; its opt() fields are the suite's own command-line options
    run: Callable[..., dict[str, Any]]  # called as run(ctx, run_dir, options, seed) -> dict
    uses_methods: bool = True  # takes --methods / --param
    defaults: dict[str, Any] = field(default_factory=dict)  # overrides of shared option defaults
    verdict: Callable[[Path], str | None] | None = None  # (run_dir) -> one paragraph for the report

    def run_function(self) -> Callable[..., dict[str, Any]]:
        return self.run

    def verdict_function(self) -> Callable[[Path], str | None] | None:
        return self.verdict


_SUITES: dict[str, Suite] = {}
_DISCOVERED = False
SUITES_PACKAGE = "xai_serve.evaluation.suites"


def register_suite(suite: Suite) -> Suite:
    """Add ``suite`` to the registry (a second suite with the same name is an error)."""
    old = _SUITES.get(suite.name)
    if old is not None and old != suite:
        raise ValueError(f"suite {suite.name!r} is already registered")
    _SUITES[suite.name] = suite
    return suite


def discover() -> None:
    """Import every module of the suites package once (each registers its suite)."""
    global _DISCOVERED
    if _DISCOVERED:
        return
    package = importlib.import_module(SUITES_PACKAGE)
    for info in sorted(pkgutil.iter_modules(package.__path__), key=lambda i: i.name):
        if not info.name.startswith("_"):
            importlib.import_module(f"{SUITES_PACKAGE}.{info.name}")
    _DISCOVERED = True


def list_suites() -> dict[str, Suite]:
    """Every registered suite by name, in registration (discovery) order."""
    discover()
    return dict(_SUITES)


def get_suite(name: str) -> Suite:
    suites = list_suites()
    if name not in suites:
        raise InvalidParameterError(f"suite must be one of {', '.join(suites)}; got {name!r}")
    return suites[name]
