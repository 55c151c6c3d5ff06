"""Runs the engine requests of one API call (n choices, several prompts) as one stream.

Each request is pumped by its own task into a shared queue, so choices interleave as the engine
produces them. `start()` waits for every request's first delta before anything is sent, so that a
request the engine refuses (context too long, bad template) becomes an HTTP error, not a broken
stream. Closing the fan-in cancels every request still running in the engine; interrupting it (the
server is shutting down) ends its stream with an error at once.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator

from adapters.base import Delta, Engine, EngineError, GenerationRequest
from server.inference.translate import require_no_error

log = logging.getLogger(__name__)


class FanIn:
    """The merged deltas of several requests, tagged with their choice index."""

    def __init__(self, engine: Engine, requests: list[GenerationRequest], prompt_param: str = "messages") -> None:
        self.prompt_param = prompt_param
        self._queue: asyncio.Queue[tuple[int, Delta]] = asyncio.Queue()
        self._pending: list[tuple[int, Delta]] = []
        # Choices that have finished, or were stopped (their later deltas are dropped).
        self._done: set[int] = set()
        self._interrupted: Exception | None = None
        self._tasks = [asyncio.create_task(self._pump(i, engine.generate(r))) for i, r in enumerate(requests)]

    async def _pump(self, index: int, deltas: AsyncIterator[Delta]) -> None:
        try:
            async for delta in deltas:
                self._queue.put_nowait((index, delta))
        except Exception as exc:
            # A request that fails to reach the engine must still end: `start()` and the stream
            # wait for its deltas, and its call holds a scheduler slot until they come.
            log.exception("engine request %d failed", index)
            error = EngineError("internal_error", f"{type(exc).__name__}: {exc}")
            self._queue.put_nowait((index, Delta(request_id=0, error=error)))

    async def start(self) -> None:
        """Wait for the first delta of every request; raise the API error of the first refusal."""
        seen: set[int] = set()
        try:
            while len(seen) < len(self._tasks):
                index, delta = await self._queue.get()
                self._raise_if_interrupted()
                require_no_error(delta, self.prompt_param)
                seen.add(index)
                self._pending.append((index, delta))
        except BaseException:
            await self.close()
            raise

    async def __aiter__(self) -> AsyncIterator[tuple[int, Delta]]:
        """Every delta, first those `start()` looked at, until each request has finished."""
        while len(self._done) < len(self._tasks):
            self._raise_if_interrupted()
            if self._pending:
                index, delta = self._pending.pop(0)
            else:
                index, delta = await self._queue.get()
                self._raise_if_interrupted()
            if index in self._done:
                continue
            if delta.final:
                self._done.add(index)
            yield index, delta

    def interrupt(self, error: Exception) -> None:
        """End the stream with `error` now, whatever the engine is doing (closing cancels it)."""
        self._interrupted = error
        self._queue.put_nowait((-1, Delta(request_id=-1)))  # wakes a reader waiting for a delta

    def _raise_if_interrupted(self) -> None:
        if self._interrupted is not None:
            raise self._interrupted

    async def stop(self, index: int) -> None:
        """End request `index` early: cancel it in the engine and drop whatever it still sends."""
        self._done.add(index)
        task = self._tasks[index]
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)

    async def close(self) -> None:
        """Cancel whatever is still running."""
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
