"""The one seam between workflows and models: what a step may ask of the server's models.

`ModelGateway` is all the runner knows; `EngineGateway` implements it over the app's engine
registry. A service name and a model id are both valid targets: `known_models()` lists whatever
names the registry answers to.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from typing import Any, Protocol

import msgspec

from adapters.base import ChatMessage, GenerationRequest, SamplingParams
from server.errors import APIError


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

    def generate(
        self,
        model: str,
        params: SamplingParams,
        *,
        messages: Sequence[ChatMessage] | None = None,
        prompt: str | None = None,
    ) -> AsyncIterator[TextChunk]:
        """Stream one generation; raise `StepFailed` if the model refuses or fails."""
        ...

    async def embed(self, model: str, texts: list[str]) -> list[list[float]]:
        """One vector per text."""
        ...


class EngineGateway:
    """`ModelGateway` over the server's `EngineRegistry` (and its embedding engines, if any)."""

    def __init__(self, registry: Any, embed: Callable[[str, list[str]], Awaitable[list[list[float]]]] | None = None):
        self._registry = registry
        self._embed = embed

    def known_models(self) -> set[str]:
        """The ids the registry serves."""
        return {card.id for card in self._registry.cards()}

    async def generate(
        self,
        model: str,
        params: SamplingParams,
        *,
        messages: Sequence[ChatMessage] | None = None,
        prompt: str | None = None,
    ) -> AsyncIterator[TextChunk]:
        """Stream one generation from `model`."""
        try:
            engine = await self._registry.acquire(model)
        except APIError as exc:
            raise StepFailed(exc.detail.message) from exc
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

    async def embed(self, model: str, texts: list[str]) -> list[list[float]]:
        """Vectors from the server's embedding engine for `model`."""
        if self._embed is None:
            raise StepFailed(f"`{model}` cannot embed: this server has no embedding models")
        try:
            return await self._embed(model, texts)
        except APIError as exc:
            raise StepFailed(exc.detail.message) from exc
