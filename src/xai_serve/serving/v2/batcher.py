"""Dynamic batching for an engine without its own (KServe's Python model server): requests arriving
while the model is busy are answered together in one :meth:`ExplainService.handle` call, like
TorchServe's ``batchSize`` / ``maxBatchDelay``.

One worker thread owns the model. :meth:`Batcher.submit` (from the event loop) queues the rows of one
v2 request and awaits their answers; the worker takes the first waiting request, adds the requests
already waiting (and, with ``max_delay_s`` > 0, those arriving within it) up to ``max_rows`` rows, and
answers them all with one call. The default is greedy (no wait): a lone request is answered at once,
and under load the requests that queue while the model is busy form the next batch.
"""

from __future__ import annotations

import asyncio
import logging
import queue
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from xai_client.api.v1 import explain_pb2 as pb

log = logging.getLogger(__name__)

Handle = Callable[[Sequence[pb.ExplainRequest]], list[pb.ExplainResponse]]


@dataclass
class _Job:
    rows: list[pb.ExplainRequest]
    loop: asyncio.AbstractEventLoop
    future: asyncio.Future


class Batcher:
    """Answers row lists through ``handle`` in batches (see the module doc)."""

    def __init__(
        self,
        handle: Handle,
        *,
        max_rows: int = 16,
        max_delay_s: float = 0.0,
        on_start: Callable[[], None] | None = None,
    ) -> None:
        self.handle = handle
        self._on_start = on_start
        self.max_rows = max_rows
        self.max_delay_s = max_delay_s
        self._queue: queue.Queue[_Job | None] = queue.Queue()
        self._thread = threading.Thread(target=self._run, name="xai-batcher", daemon=True)
        self._thread.start()

    async def submit(self, rows: list[pb.ExplainRequest]) -> list[pb.ExplainResponse]:
        loop = asyncio.get_running_loop()
        job = _Job(rows, loop, loop.create_future())
        self._queue.put(job)
        return await job.future

    def close(self) -> None:
        self._queue.put(None)

    def _run(self) -> None:
        if self._on_start is not None:  # e.g. torch's per-thread settings for the worker thread
            self._on_start()
        while True:
            first = self._queue.get()
            if first is None:
                return
            jobs, rows = [first], len(first.rows)
            deadline = time.monotonic() + self.max_delay_s
            while rows < self.max_rows:
                wait = deadline - time.monotonic()
                try:
                    nxt = self._queue.get(timeout=wait) if wait > 0 else self._queue.get_nowait()
                except queue.Empty:
                    break
                if nxt is None:
                    self._queue.put(None)
                    break
                jobs.append(nxt)
                rows += len(nxt.rows)
            self._answer(jobs)

    def _answer(self, jobs: list[_Job]) -> None:
        items = [r for job in jobs for r in job.rows]
        try:
            answers: list[pb.ExplainResponse] | BaseException = self.handle(items)
        except BaseException as exc:  # the service answers every item itself; this is a last resort
            log.error("batch failed", exc_info=True)
            answers = exc
        start = 0
        by_loop: dict[asyncio.AbstractEventLoop, list[tuple[asyncio.Future, object]]] = {}
        for job in jobs:
            if isinstance(answers, BaseException):
                result: object = answers
            else:
                result = answers[start : start + len(job.rows)]
                start += len(job.rows)
            by_loop.setdefault(job.loop, []).append((job.future, result))
        for loop, settled in by_loop.items():  # one wake-up per event loop, not one per request
            loop.call_soon_threadsafe(_settle, settled)


def _settle(settled: list[tuple[asyncio.Future, object]]) -> None:
    for future, result in settled:
        if future.done():  # the caller went away (a cancelled request)
            continue
        if isinstance(result, BaseException):
            future.set_exception(result)
        else:
            future.set_result(result)
