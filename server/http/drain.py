"""Shutting down without breaking a stream (docs/scheduler.md, "Shutdown").

On SIGTERM (or Ctrl-C) `hearth serve` calls `Drain.begin()`, and the server drains before uvicorn is
told to stop:

1. New requests are answered at once with 503 `server_shutting_down` (and `Connection: close`);
   the listening socket stays open meanwhile, so a client sees a clear refusal, not a reset.
2. Requests in flight run on, for up to `shutdown_grace_s`.
3. Then the `on_cut` hooks run: the door interrupts every model call still in flight (a stream ends
   with its dialect's error event and `[DONE]`, a whole answer is a 503) and refuses new ones.
4. Whatever still runs a moment later (a stream that is not a model call, such as a hub job's
   events) is cancelled here and finished by this middleware: an SSE error event and `[DONE]`
   when its response had started, a 503 when it had not.
5. `on_drained()` tells uvicorn to exit, which finds nothing left to cancel: no CancelledError,
   no traceback. A second signal skips the rest and stops at once.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from types import FrameType
from typing import Any

import msgspec
import uvicorn
from litestar.enums import ScopeType
from litestar.types import ASGIApp, Message, Receive, Scope, Send

from server.http import sse
from server.http.errors import APIError, ErrorResponse

log = logging.getLogger(__name__)

SHUTTING_DOWN = "The server is shutting down; try again in a moment."
# After the hooks end the model calls, how long the rest may take before they are cancelled.
_SETTLE_S = 1.0


def shutting_down() -> APIError:
    """The error of a request the server will not finish because it is shutting down."""
    return APIError(503, SHUTTING_DOWN, type="server_error", code="server_shutting_down", headers={"Retry-After": "1"})


class _Progress:
    """How far one response got: whether it started, is an event stream, and ended."""

    def __init__(self) -> None:
        self.started = False
        self.stream = False
        self.ended = False

    def see(self, message: Message) -> None:
        if message["type"] == "http.response.start":
            self.started = True
            self.stream = dict(message.get("headers", [])).get(b"content-type", b"").startswith(b"text/event-stream")
        elif message["type"] == "http.response.body" and not message.get("more_body", False):
            self.ended = True


async def _finish(send: Send, progress: _Progress) -> None:
    """End a response this middleware had to cut off, as cleanly as where it got to allows."""
    error = shutting_down()
    if not progress.started:
        body = msgspec.json.encode(ErrorResponse(error.detail))
        headers = [
            (b"content-type", b"application/json"),
            (b"content-length", str(len(body)).encode()),
            (b"retry-after", b"1"),
            (b"connection", b"close"),
        ]
        await send({"type": "http.response.start", "status": 503, "headers": headers})
        await send({"type": "http.response.body", "body": body, "more_body": False})
    elif not progress.ended:
        tail = sse.EventEncoder().error(error) + sse.DONE if progress.stream else b""
        await send({"type": "http.response.body", "body": tail, "more_body": False})


class Drain:
    """The server's shutdown: refuses new requests, waits for those in flight, then ends them."""

    def __init__(self, grace_s: float) -> None:
        self.grace_s = grace_s
        self.draining = False
        self.on_drained: Callable[[], None] = lambda: None
        self._cut_hooks: list[Callable[[], None]] = []
        self._active: set[asyncio.Task[Any]] = set()
        self._cancelled: set[asyncio.Task[Any]] = set()
        self._idle = asyncio.Event()
        self._idle.set()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._task: asyncio.Task[None] | None = None

    def on_cut(self, hook: Callable[[], None]) -> None:
        """Run `hook` when the grace period is over and requests are still in flight."""
        self._cut_hooks.append(hook)

    @asynccontextmanager
    async def lifespan(self, _app: Any) -> AsyncIterator[None]:
        """Know the app's event loop, so that a signal handler can start the drain on it."""
        self._loop = asyncio.get_running_loop()
        try:
            yield
        finally:
            self._loop = None

    def begin(self) -> None:
        """Start draining; safe to call from a signal handler (returns at once)."""
        loop = self._loop
        if loop is None or loop.is_closed():
            self.on_drained()  # not serving yet (or any more): nothing to drain
            return
        loop.call_soon_threadsafe(self._start)

    def _start(self) -> None:
        if self.draining:
            return
        self.draining = True
        log.info("shutting down: %d request(s) in flight may run for up to %g s", len(self._active), self.grace_s)
        self._task = asyncio.get_running_loop().create_task(self._drain())

    async def _wait_idle(self, seconds: float) -> bool:
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(seconds):
                await self._idle.wait()
        return not self._active

    async def _drain(self) -> None:
        try:
            if not await self._wait_idle(self.grace_s):
                log.warning("%d request(s) still running after %g s: ending them", len(self._active), self.grace_s)
                for hook in self._cut_hooks:
                    hook()
                if not await self._wait_idle(_SETTLE_S):
                    self._cancelled.update(self._active)
                    for task in self._cancelled:
                        task.cancel()
                    await self._wait_idle(_SETTLE_S)
        finally:
            self.on_drained()

    def middleware(self) -> Callable[[ASGIApp], ASGIApp]:
        """The ASGI middleware factory that counts requests in flight and refuses new ones."""

        def factory(app: ASGIApp) -> ASGIApp:
            async def middleware(scope: Scope, receive: Receive, send: Send) -> None:
                if scope["type"] != ScopeType.HTTP:
                    await app(scope, receive, send)
                    return
                if self.draining:
                    await _finish(send, _Progress())
                    return
                task = asyncio.current_task()
                assert task is not None
                self._active.add(task)
                self._idle.clear()
                progress = _Progress()

                async def tracked(message: Message) -> None:
                    progress.see(message)
                    await send(message)

                try:
                    await app(scope, receive, tracked)
                except asyncio.CancelledError:
                    if task not in self._cancelled:
                        raise
                    task.uncancel()
                    await _finish(send, progress)
                finally:
                    self._active.discard(task)
                    self._cancelled.discard(task)
                    if not self._active:
                        self._idle.set()

            return middleware

        return factory


class DrainingServer(uvicorn.Server):
    """uvicorn, stopped by the app's drain: the first SIGTERM or SIGINT starts it (new requests get
    503, those in flight end cleanly within the grace period) and uvicorn exits once it is over; a
    second signal stops at once, as plain uvicorn does."""

    def __init__(self, config: uvicorn.Config, drain: Drain) -> None:
        super().__init__(config)
        self._drain = drain
        self._draining = False
        drain.on_drained = self._drained

    def handle_exit(self, sig: int, frame: FrameType | None) -> None:
        """The signal handler (main thread): drain first, then the usual exit."""
        if self._draining:
            super().handle_exit(sig, frame)
            return
        self._draining = True
        self._drain.begin()

    def _drained(self) -> None:
        self.should_exit = True
