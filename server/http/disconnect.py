"""Stop work for clients that have gone away.

Streamed responses are cancelled by Litestar when the client disconnects. A non-streamed answer
has no such hook, so its generation is raced against the connection's `http.disconnect` message.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Coroutine
from typing import Any, TypeVar

from litestar import Request

from server.http.errors import APIError

T = TypeVar("T")


async def _disconnected(request: Request[Any, Any, Any]) -> None:
    while True:
        message = await request.receive()
        if message["type"] == "http.disconnect":
            return


async def unless_disconnected(request: Request[Any, Any, Any] | None, work: Coroutine[Any, Any, T]) -> T:
    """Run `work`; cancel it if the client disconnects first (the body must already be read). With
    no request (a workflow step) there is no client to watch: `work` just runs."""
    if request is None:
        return await work
    task = asyncio.ensure_future(work)
    watcher = asyncio.ensure_future(_disconnected(request))
    try:
        await asyncio.wait({task, watcher}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        watcher.cancel()
    if not task.done():
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        # Nobody is left to read an answer; 499 is what proxies log for this.
        raise APIError(499, "The client closed the connection.", code="client_closed_request")
    return task.result()
