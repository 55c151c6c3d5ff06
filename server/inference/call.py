"""What chat and legacy completions share: one API call's identity, its delta loop, SSE framing.

A `Call` owns the merged engine stream of one request (its `FanIn`), counts usage as deltas pass,
and turns engine errors into API errors. Routes only say how deltas become their own chunk types.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import AsyncIterator, Callable
from typing import Any, Protocol

from adapters.base import Delta
from server.http import sse
from server.http.errors import APIError
from server.inference import protocol as p
from server.inference.fanin import FanIn
from server.inference.translate import UsageCounter, finish_reason, require_no_error


class CallWatcher(Protocol):
    """Sees every delta of a call, and its end (e.g. to time tokens and free the call's slot)."""

    def delta(self, delta: Delta) -> None:
        """One delta passed."""
        ...

    def done(self) -> None:
        """The call is over; may be called more than once."""
        ...


class Call:
    """One chat or completion call in flight."""

    def __init__(
        self,
        *,
        prefix: str,
        model: str,
        fingerprint: str,
        fan: FanIn,
        prompt_of_choice: list[int],
        include_usage: bool,
        watcher: CallWatcher | None = None,
    ) -> None:
        self.id = f"{prefix}-{uuid.uuid4().hex}"
        self.created = int(time.time())
        self.model = model
        self.fingerprint = fingerprint
        self.fan = fan
        self.choices = len(prompt_of_choice)
        self.usage = UsageCounter(prompt_of_choice)
        self.include_usage = include_usage
        self.watcher = watcher

    def fields(self) -> dict[str, Any]:
        """The fields every response object and chunk of this call repeats."""
        return {"id": self.id, "created": self.created, "model": self.model, "system_fingerprint": self.fingerprint}

    def chunk_fields(self) -> dict[str, Any]:
        """`fields()` plus `usage: null`, which chunks carry when the client asked for usage."""
        return {**self.fields(), "usage": None} if self.include_usage else self.fields()

    async def deltas(self) -> AsyncIterator[tuple[int, Delta]]:
        """Every delta with its choice index, counted; an engine error raises its API error."""
        try:
            async for index, delta in self.fan:
                require_no_error(delta, self.fan.prompt_param)
                self.usage.add(index, delta)
                if self.watcher is not None:
                    self.watcher.delta(delta)
                yield index, delta
        finally:
            await self.close()

    async def close(self) -> None:
        """Cancel what is still running in the engine and tell the watcher the call is over."""
        try:
            await self.fan.close()
        finally:
            if self.watcher is not None:
                self.watcher.done()

    async def collect(self) -> tuple[list[str], list[p.FinishReason | None]]:
        """Each choice's whole text and finish reason."""
        texts: list[list[str]] = [[] for _ in range(self.choices)]
        finishes: list[p.FinishReason | None] = [None] * self.choices
        async for index, delta in self.deltas():
            texts[index].append(delta.text)
            if delta.final:
                finishes[index] = finish_reason(delta)
        return ["".join(parts) for parts in texts], finishes


async def event_stream(
    call: Call, chunks: AsyncIterator[object], usage_chunk: Callable[[p.Usage], object]
) -> AsyncIterator[bytes]:
    """SSE bytes for `chunks`, then the usage chunk if asked for, then `[DONE]`; an error after the
    stream started becomes an error event."""
    encoder = sse.EventEncoder()
    try:
        async for chunk in chunks:
            yield encoder.event(chunk)
        if call.include_usage:
            yield encoder.event(usage_chunk(call.usage.usage()))
    except APIError as error:
        yield encoder.error(error)
    finally:
        # `chunks` may be left suspended rather than closed; close the engine requests here too.
        await call.close()
    yield sse.DONE
