"""``--shard K/N``: the slice of a job's parts one process computes.

Part ``i`` belongs to shard ``i % N`` (batches interleave, so every shard gets a similar amount of
work). While a :func:`sharding` block is active, a job's part loop computes only the parts of its
shard and then raises :class:`ShardComplete` instead of assembling outputs: the merge happens once,
in a later unsharded run (``--resume``) that finds every part stored.
"""

from __future__ import annotations

import contextvars
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from xai_serve.errors import InvalidParameterError


@dataclass(frozen=True)
class Shard:
    index: int  # K, 0-based (a Kubernetes Indexed Job's JOB_COMPLETION_INDEX)
    count: int  # N

    @classmethod
    def parse(cls, text: str) -> Shard:
        k, sep, n = text.partition("/")
        try:
            shard = cls(int(k), int(n))
        except ValueError:
            shard = None
        if not sep or shard is None or shard.count < 1 or not 0 <= shard.index < shard.count:
            raise InvalidParameterError(f"--shard expects K/N with 0 <= K < N, got {text!r}")
        return shard

    def owns(self, part: int) -> bool:
        return part % self.count == self.index

    def __str__(self) -> str:
        return f"{self.index}/{self.count}"


class ShardComplete(Exception):  # a control-flow signal, not an error
    """Every part of the active shard is stored; the outputs are assembled by the merge run."""

    def __init__(self, shard: Shard, done: int) -> None:
        super().__init__(f"shard {shard}: {done} parts stored")
        self.shard = shard
        self.done = done


_ACTIVE: contextvars.ContextVar[Shard | None] = contextvars.ContextVar("xai_shard", default=None)


def current_shard() -> Shard | None:
    return _ACTIVE.get()


@contextmanager
def sharding(shard: Shard | None) -> Iterator[None]:
    token = _ACTIVE.set(shard)
    try:
        yield
    finally:
        _ACTIVE.reset(token)
