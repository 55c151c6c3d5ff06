"""The models this server serves, each an `Engine` running in its own worker process."""

from __future__ import annotations

import asyncio
import logging
import time

from adapters.base import EngineOptions
from adapters.worker import EngineStartError, WorkerEngine
from hub.models import ModelSpec
from server.errors import APIError, model_not_found
from server.protocol import ModelCard

log = logging.getLogger(__name__)


class EngineRegistry:
    """Model id -> running engine. Owned by the app's lifespan."""

    def __init__(self) -> None:
        self._engines: dict[str, WorkerEngine] = {}
        self._specs: dict[str, ModelSpec] = {}
        self._options: dict[str, EngineOptions] = {}
        self._created: dict[str, int] = {}
        self._restart_locks: dict[str, asyncio.Lock] = {}

    async def start(self, spec: ModelSpec, options: EngineOptions) -> WorkerEngine:
        """Load `spec` in a new worker and serve it under `spec.id`."""
        engine = await WorkerEngine.start(spec, options)
        self._engines[spec.id] = engine
        self._specs[spec.id] = spec
        self._options[spec.id] = options
        self._restart_locks[spec.id] = asyncio.Lock()
        self._created[spec.id] = int(time.time())
        return engine

    async def acquire(self, model_id: str) -> WorkerEngine:
        """The engine serving `model_id` (404 if none); a worker that died is started again first."""
        engine = self._engines.get(model_id)
        if engine is None:
            raise model_not_found(model_id)
        if engine.alive:
            return engine
        async with self._restart_locks[model_id]:
            engine = self._engines[model_id]
            if engine.alive:
                return engine
            log.warning("the worker for %s is down; starting it again", model_id)
            await engine.close()
            try:
                engine = await WorkerEngine.start(self._specs[model_id], self._options[model_id])
            except EngineStartError as exc:
                log.error("cannot restart %s: %s", model_id, exc)
                raise APIError(
                    503,
                    f"The model `{model_id}` is not available right now.",
                    type="server_error",
                    code="model_unavailable",
                ) from exc
            self._engines[model_id] = engine
            return engine

    def card(self, model_id: str) -> ModelCard:
        """The /v1/models entry of `model_id`."""
        engine = self._engines.get(model_id)
        if engine is None:
            raise model_not_found(model_id)
        context = engine.info.context_length
        return ModelCard(
            id=model_id,
            created=self._created[model_id],
            owned_by=self._specs[model_id].owned_by,
            context_length=context,
            max_model_len=context,
        )

    def cards(self) -> list[ModelCard]:
        """Every served model."""
        return [self.card(model_id) for model_id in self._engines]

    def status(self) -> dict[str, bool]:
        """Model id -> whether its engine is up."""
        return {model_id: engine.alive for model_id, engine in self._engines.items()}

    async def close(self) -> None:
        """Stop every worker."""
        await asyncio.gather(*(engine.close() for engine in self._engines.values()), return_exceptions=True)
        self._engines.clear()
