"""The one seam between workflows and models: what a step may ask of the server's models.

`ModelGateway` is all the runner knows; `SchedulerGateway` implements it over the app's
scheduler. A service name and a model id are both valid targets: `known_models()` lists whatever
names the scheduler and the embedding registry answer to.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from typing import Any, Protocol

import msgspec

from adapters.base import ChatMessage, Engine, GenerationRequest, SamplingParams
from server.http.errors import APIError
from server.inference.translate import SamplingDefaults


class StepFailed(Exception):
    """A step could not produce its output; the message says why, for the run record."""


class TextChunk(msgspec.Struct, frozen=True):
    """New text of one generation, with the tokens it took; the first carries the prompt's size."""

    text: str
    tokens: int = 0
    prompt_tokens: int | None = None


class ModelGateway(Protocol):
    """What workflow steps may ask of the server's models."""

    def known_models(self) -> set[str]:
        """Every service name and model id a step may name."""
        ...

    def sampling_defaults(self, model: str) -> SamplingDefaults | None:
        """The service's own defaults for parameters a step leaves out (None: the server's)."""
        ...

    def generate(
        self,
        model: str,
        params: SamplingParams,
        *,
        messages: Sequence[ChatMessage] | None = None,
        prompt: str | None = None,
        priority: int | None = None,
    ) -> AsyncIterator[TextChunk]:
        """Stream one generation, admitted at `priority` (None: the service's); raise `StepFailed`
        if the model refuses or fails."""
        ...

    async def embed(self, model: str, texts: list[str]) -> list[list[float]]:
        """One vector per text."""
        ...


class _Lease(Protocol):
    @property
    def engine(self) -> Engine: ...

    def release(self) -> None: ...


class _Scheduler(Protocol):
    def names(self) -> list[str]: ...

    def deployment(self, name: str) -> Any: ...

    async def acquire(self, name: str, priority: int | None = None) -> _Lease: ...


class _Embedders(Protocol):
    """The server's embedding models (server/inference/embeddings/call.py's `Embeddings`)."""

    @property
    def model_ids(self) -> list[str]: ...

    async def embed(self, model_id: str, texts: list[str], param: str = "input") -> Any: ...


async def _stream(
    engine: Engine, params: SamplingParams, messages: Sequence[ChatMessage] | None, prompt: str | None
) -> AsyncIterator[TextChunk]:
    request = GenerationRequest(
        request_id=engine.next_request_id(),
        params=params,
        messages=tuple(messages) if messages is not None else None,
        prompt=prompt,
    )
    # Closing this generator (a cancelled run) closes the engine's stream, which cancels the request.
    async for delta in engine.generate(request):
        if delta.error is not None:
            raise StepFailed(f"the model failed: {delta.error.message}")
        yield TextChunk(delta.text, delta.tokens, delta.prompt_tokens)


class _Embedding:
    """The embedding half of a gateway: the server's embedding models, if it has any."""

    _embedders: _Embedders | None = None

    def embedding_models(self) -> set[str]:
        """Names of the embedding models served."""
        return set(self._embedders.model_ids) if self._embedders is not None else set()

    async def embed(self, model: str, texts: list[str]) -> list[list[float]]:
        """Vectors from the server's embedding model `model`."""
        if self._embedders is None:
            raise StepFailed(f"`{model}` cannot embed: this server has no embedding models")
        if not texts:
            return []
        try:
            result = await self._embedders.embed(model, texts, "with.texts")
            vectors: list[list[float]] = result.vectors.tolist()
        except APIError as exc:
            raise StepFailed(exc.detail.message) from exc
        return vectors


class SchedulerGateway(_Embedding):
    """`ModelGateway` over a scheduler of named services: each generation holds a lease, so the
    scheduler's queues, priorities and keep-alive apply to workflow steps like to API calls."""

    def __init__(self, scheduler: _Scheduler, embedders: _Embedders | None = None) -> None:
        self._scheduler = scheduler
        self._embedders = embedders

    def known_models(self) -> set[str]:
        """Every service name the scheduler serves, and the embedding models."""
        return set(self._scheduler.names()) | self.embedding_models()

    def sampling_defaults(self, model: str) -> SamplingDefaults | None:
        """The service's own sampling defaults, as its API calls get them."""
        try:
            sampling = getattr(self._scheduler.deployment(model), "sampling", None)
        except APIError:
            return None
        return sampling if isinstance(sampling, SamplingDefaults) else None

    async def generate(
        self,
        model: str,
        params: SamplingParams,
        *,
        messages: Sequence[ChatMessage] | None = None,
        prompt: str | None = None,
        priority: int | None = None,
    ) -> AsyncIterator[TextChunk]:
        """Stream one generation from the service `model`, holding a lease while it runs."""
        try:
            lease = await self._scheduler.acquire(model, priority)
        except APIError as exc:
            raise StepFailed(exc.detail.message) from exc
        try:
            async for chunk in _stream(lease.engine, params, messages, prompt):
                yield chunk
        finally:
            lease.release()


def gateway_for(state: Any) -> ModelGateway:
    """The gateway over the app's scheduler and embedding models."""
    return SchedulerGateway(state.scheduler, getattr(state, "embedders", None))
