"""A text generation model in a worker process, as the server's async `Engine`.

The worker takes commands (submit, cancel, tokenize) between batch steps and sends back every
delta a step produced as one message; each delta goes to the asyncio queue of its request.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

from adapters.base import (
    Delta,
    EngineError,
    EngineOptions,
    GenerationRequest,
    RunnerExitHook,
    Tokenize,
    Tokens,
)
from adapters.ipc import Cancel, Deltas, LoadChat, Results, Submit
from adapters.sandbox import Confinement
from adapters.worker import NOT_RUNNING, WorkerEngine
from hub.models import ModelSpec


class ChatEngine(WorkerEngine):
    """An `Engine` whose model generates text in a child process."""

    _queues: dict[int, asyncio.Queue[Delta]]
    _tokenizing: dict[int, asyncio.Future[Tokens]]

    def _open(self) -> None:
        self._queues, self._tokenizing = {}, {}

    @classmethod
    async def start(
        cls,
        spec: ModelSpec,
        options: EngineOptions,
        load_timeout: float = 300.0,
        confinement: Confinement | None = None,
        on_exit: RunnerExitHook | None = None,
    ) -> ChatEngine:
        """Spawn a worker for `spec` (confined as `confinement` says, by default fully) and wait
        until its model is loaded; `on_exit` is told if it later stops unasked."""
        return await cls.spawn(LoadChat(spec, options, confinement or Confinement()), load_timeout, on_exit)

    def _on_event(self, event: Deltas | Results | Tokens) -> None:
        queues, tokenizing = self._queues, self._tokenizing
        match event:
            case Deltas(deltas=deltas):
                for delta in deltas:
                    queue = queues.get(delta.request_id)
                    if queue is not None:
                        queue.put_nowait(delta)
                        if delta.final:
                            del queues[delta.request_id]
            case Tokens(request_id=rid):
                future = tokenizing.pop(rid, None)
                if future is not None and not future.done():
                    future.set_result(event)
            case Results():
                pass  # a chat worker embeds nothing

    def _fail_all(self, error: EngineError) -> None:
        queues, tokenizing = self._queues, self._tokenizing
        for rid, queue in queues.items():
            queue.put_nowait(Delta(request_id=rid, error=error))
        queues.clear()
        for rid, future in tokenizing.items():
            if not future.done():
                future.set_result(Tokens(rid, error=error.message))
        tokenizing.clear()

    async def tokenize(self, command: Tokenize) -> Tokens:
        """Run a tokenize/detokenize command in the worker (between batch steps)."""
        if not self.alive:
            return Tokens(command.request_id, error=NOT_RUNNING)
        tokenizing = self._tokenizing
        future: asyncio.Future[Tokens] = asyncio.get_running_loop().create_future()
        tokenizing[command.request_id] = future
        try:
            self._send(command)
            return await future
        except OSError:
            return Tokens(command.request_id, error=NOT_RUNNING)
        except (OverflowError, TypeError, ValueError) as exc:
            return Tokens(command.request_id, error=f"cannot send the request: {exc}")
        finally:
            tokenizing.pop(command.request_id, None)

    async def generate(self, request: GenerationRequest) -> AsyncIterator[Delta]:
        """Stream the deltas of `request`; leaving early cancels it in the worker."""
        rid = request.request_id
        if not self.alive:
            yield Delta(request_id=rid, error=EngineError("engine_unavailable", NOT_RUNNING))
            return
        queues = self._queues
        queue: asyncio.Queue[Delta] = asyncio.Queue()
        queues[rid] = queue
        try:
            try:
                self._send(Submit(request))
            except OSError:
                yield Delta(request_id=rid, error=EngineError("engine_unavailable", NOT_RUNNING))
                return
            except (OverflowError, TypeError, ValueError) as exc:
                # A value the worker's message format cannot carry (an int past 64 bits): the
                # protocols range-check every field, so this is a request no route validated.
                yield Delta(request_id=rid, error=EngineError("invalid_request", f"cannot send the request: {exc}"))
                return
            while True:
                delta = await queue.get()
                yield delta
                if delta.final:
                    return
        finally:
            if queues.pop(rid, None) is not None and self.alive:
                with contextlib.suppress(OSError):
                    self._send(Cancel(rid))
