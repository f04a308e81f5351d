"""Per-request cost limits: a well-formed request must not hold a worker hostage.

The limits live in the archive's ``model-config.yaml`` (section ``xai:``, written by ``xai archive`` from
:class:`~xai_serve.serving.archive.ArchiveOptions`) and are read by the worker at start-up. A request
above a limit is answered ``RESOURCE_EXHAUSTED`` (:class:`~xai_serve.errors.ResourceExhaustedError`)
naming the limit, before anything is computed; the other requests of its batch are served.

* ``max_rows``: explained rows per request = targets x methods (``top5`` with 3 methods is 15 rows);
* ``max_iterations``: iterations of an iterative method (its spec names the parameter that counts them,
  e.g. ``class_image``'s ``iterations``; see :class:`~xai_serve.explain.registry.MethodSpec`);
* ``max_work``: estimated forward+backward passes per request = sum over methods of
  ``rows_per_method x spec.passes x iterations``;
* ``lrp_cache_entries``: LRU bound of the LRP derived-parameter cache of the served model (a
  ``gamma`` a client sends derives one set of weights per layer).

A request whose client deadline (``ExplainRequest.deadline_unix_s``) has passed is answered
``DEADLINE_EXCEEDED`` without being computed (:func:`check_deadline`).
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass, fields
from typing import Any

from xai_serve.errors import DeadlineExceededError, InvalidArgumentError, ResourceExhaustedError


@dataclass(frozen=True)
class CostLimits:
    """The per-request bounds (defaults suit the CPU models of this project; see the module doc)."""

    max_rows: int = 64
    max_iterations: int = 500
    max_work: float = 2000.0
    lrp_cache_entries: int = 1024

    def __post_init__(self) -> None:
        for f in fields(self):
            value = getattr(self, f.name)
            if isinstance(value, bool) or not isinstance(value, int | float) or not value >= 1:
                raise InvalidArgumentError(f"cost limit {f.name!r} must be a number >= 1, not {value!r}")

    @classmethod
    def from_config(cls, config: Mapping[str, Any]) -> CostLimits:
        """The limits named in a model-config ``xai:`` section (missing keys keep their defaults)."""
        kwargs: dict[str, Any] = {}
        for f in fields(cls):
            if config.get(f.name) is not None:
                kind = float if f.name == "max_work" else int
                try:
                    kwargs[f.name] = kind(config[f.name])
                except (TypeError, ValueError):
                    raise InvalidArgumentError(
                        f"cost limit {f.name!r} in model-config.yaml must be a number, not {config[f.name]!r}"
                    ) from None
        return cls(**kwargs)

    def to_config(self) -> dict[str, Any]:
        return {f.name: getattr(self, f.name) for f in fields(self)}

    def check(
        self,
        rows: int,
        methods: Mapping[str, tuple[Any, Mapping[str, Any]]],
        input_shape: tuple[int, ...] | None = None,
    ) -> float:
        """Check a request with ``rows`` targets and ``methods`` (name -> (MethodSpec, wire params)) on
        inputs of ``input_shape`` (occlusion's work grows with it); return its estimated work or raise
        ResourceExhaustedError naming the limit."""
        total_rows = rows * len(methods)
        if total_rows > self.max_rows:
            raise ResourceExhaustedError(
                f"request asks for {total_rows} explained rows ({rows} targets x {len(methods)} methods), "
                f"more than the limit max_rows={self.max_rows}; ask for fewer targets (topK) or methods"
            )
        work = 0.0
        for name, (spec, params) in methods.items():
            iterations = spec.iteration_count(params)
            if iterations > self.max_iterations:
                raise ResourceExhaustedError(
                    f"method {name!r}: {spec.iterations}={iterations} is more than the limit "
                    f"max_iterations={self.max_iterations}"
                )
            work += rows * spec.work(params, input_shape)
        if work > self.max_work:
            raise ResourceExhaustedError(
                f"request needs about {work:g} forward+backward passes, more than the limit "
                f"max_work={self.max_work:g}; ask for fewer targets, methods or iterations"
            )
        return work


def check_deadline(deadline_unix_s: float, now: float | None = None) -> None:
    """DeadlineExceededError when the client deadline (Unix seconds; 0 = none) has passed."""
    if deadline_unix_s and deadline_unix_s > 0:
        now = time.time() if now is None else now
        if now >= deadline_unix_s:
            raise DeadlineExceededError(
                f"the client deadline passed {now - deadline_unix_s:.3f} s before the worker reached the "
                "request; it was not computed"
            )
