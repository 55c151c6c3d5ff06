"""An embedding model in a worker process: `embed(texts)` may be awaited concurrently.

The worker drains every `Embed` that arrived while it was busy and embeds all their texts in one
engine call, so concurrent API calls share engine calls.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

from adapters.base import (
    Delta,
    EmbeddingSpec,
    EmbedRequest,
    EmbedResult,
    EngineError,
    EngineOptions,
    GenerationRequest,
    RunnerExitHook,
    Tokenize,
    Tokens,
)
from adapters.ipc import Deltas, Embed, LoadEmbeddings, Results
from adapters.sandbox import Confinement
from adapters.worker import NOT_RUNNING, WorkerEngine

_NO_TEXT = "an embedding model makes vectors, not text; use /v1/embeddings or /v1/rerank"


class EmbeddingEngine(WorkerEngine):
    """An `Embedder` whose model runs in a child process."""

    _waiting: dict[int, asyncio.Future[EmbedResult]]

    def _open(self) -> None:
        self._waiting = {}

    @classmethod
    async def start(
        cls,
        spec: EmbeddingSpec,
        options: EngineOptions,
        load_timeout: float = 300.0,
        confinement: Confinement | None = None,
        on_exit: RunnerExitHook | None = None,
    ) -> EmbeddingEngine:
        """Spawn a worker for `spec` on `options.device` (confined as `confinement` says, by
        default fully) and wait until its model is loaded; `on_exit` is told if it stops unasked."""
        return await cls.spawn(LoadEmbeddings(spec, options, confinement or Confinement()), load_timeout, on_exit)

    def _on_event(self, event: Deltas | Results | Tokens) -> None:
        match event:
            case Results(results=results):
                for result in results:
                    future = self._waiting.pop(result.request_id, None)
                    if future is not None and not future.done():
                        future.set_result(result)
            case Deltas() | Tokens():
                pass  # an embedding worker generates nothing

    def _fail_all(self, error: EngineError) -> None:
        for rid, future in self._waiting.items():
            if not future.done():
                future.set_result(EmbedResult(request_id=rid, error=error))
        self._waiting.clear()

    async def embed(self, texts: list[str]) -> EmbedResult:
        """The vectors and token counts of `texts`, or an `EmbedResult` with an error."""
        rid = self.next_request_id()
        if not self.alive:
            return EmbedResult(request_id=rid, error=EngineError("engine_unavailable", NOT_RUNNING))
        future: asyncio.Future[EmbedResult] = asyncio.get_running_loop().create_future()
        self._waiting[rid] = future
        try:
            # Large batches are written from a thread so the event loop never blocks on the socket.
            await asyncio.to_thread(self._send, Embed(EmbedRequest(request_id=rid, texts=tuple(texts))))
        except OSError:
            self._waiting.pop(rid, None)
            return EmbedResult(request_id=rid, error=EngineError("engine_unavailable", NOT_RUNNING))
        try:
            return await future
        finally:
            self._waiting.pop(rid, None)

    async def generate(self, request: GenerationRequest) -> AsyncIterator[Delta]:
        """Refuse: the scheduler sends text generation only to chat engines."""
        yield Delta(request_id=request.request_id, error=EngineError("invalid_request", _NO_TEXT))

    async def tokenize(self, command: Tokenize) -> Tokens:
        """Refuse, as `generate` does."""
        return Tokens(command.request_id, error=_NO_TEXT)
