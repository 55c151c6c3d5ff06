"""The one seam between workflows and models: what a step may ask of the server's models.

`ModelGateway` is all the runner knows; `SchedulerGateway` implements it through the app's engine
door (server/inference/call.py), the same way in as API calls. A service name and a model id are
both valid targets: `known_models()` lists whatever names the scheduler answers to.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any, Protocol

import msgspec

from adapters.base import GenerationRequest
from server.http.errors import APIError
from server.inference.call import EngineDoor
from server.settings import SamplingDefaults


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

    def generate(self, model: str, request: GenerationRequest, priority: int | None = None) -> AsyncIterator[TextChunk]:
        """Stream one generation of `request` (its id a placeholder), admitted at `priority` (None:
        the service's); raise `StepFailed` if the model refuses or fails."""
        ...

    async def embed(self, model: str, texts: list[str]) -> list[list[float]]:
        """One vector per text."""
        ...


class SchedulerGateway:
    """`ModelGateway` through the engine door: each generation is admitted like an API call, so the
    scheduler's queues, priorities and keep-alive (and the metrics) apply to workflow steps too."""

    def __init__(self, door: EngineDoor) -> None:
        self._door = door

    def known_models(self) -> set[str]:
        """Every service name the scheduler serves, and the embedding models."""
        return set(self._door.scheduler.names())

    def sampling_defaults(self, model: str) -> SamplingDefaults | None:
        """The service's own sampling defaults, as its API calls get them."""
        try:
            return self._door.defaults(model)
        except APIError:
            return None

    async def generate(
        self, model: str, request: GenerationRequest, priority: int | None = None
    ) -> AsyncIterator[TextChunk]:
        """Stream one generation from the service `model`, holding a lease while it runs."""
        prompt_param = "messages" if request.messages is not None else "prompt"
        try:
            call = await self._door.generate(model, [request], priority=priority, prompt_param=prompt_param)
        except APIError as exc:
            raise StepFailed(exc.detail.message) from exc
        # Closing this generator (a cancelled run) closes the call, which cancels the request.
        try:
            async for _, delta in call.deltas():
                yield TextChunk(delta.text, delta.tokens, delta.prompt_tokens)
        except APIError as exc:
            raise StepFailed(f"the model failed: {exc.detail.message}") from exc
        finally:
            await call.close()

    async def embed(self, model: str, texts: list[str]) -> list[list[float]]:
        """Vectors from the embedding model `model`, admitted like an API call."""
        if not texts:
            return []
        try:
            result = await self._door.embed(model, texts, param="with.texts")
        except APIError as exc:
            raise StepFailed(exc.detail.message) from exc
        vectors: list[list[float]] = result.vectors.tolist()
        return vectors


def gateway_for(state: Any) -> ModelGateway:
    """The gateway through the app's engine door."""
    return SchedulerGateway(state.door)
