"""The models this server serves, each an `Engine` running in its own worker process."""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass, field

from adapters.base import EngineOptions
from adapters.worker import EngineStartError, WorkerEngine
from hub.models import ModelSpec
from server.errors import APIError, invalid_request, model_not_found
from server.protocol import ModelCard

log = logging.getLogger(__name__)


@dataclass
class _Served:
    """A served model: its running engine and what is needed to start it again."""

    engine: WorkerEngine
    spec: ModelSpec
    options: EngineOptions
    created: int = field(default_factory=lambda: int(time.time()))
    restart_lock: asyncio.Lock = field(default_factory=asyncio.Lock)


class EngineRegistry:
    """Model id -> running engine. Owned by the app's lifespan."""

    def __init__(self) -> None:
        self._served: dict[str, _Served] = {}
        # Ids that other endpoints serve (embedding models), with the 400 message to answer here.
        self._refusals: dict[str, str] = {}

    def refuse(self, model_id: str, message: str) -> None:
        """Answer requests for `model_id` with a 400 saying `message` instead of a 404."""
        self._refusals[model_id] = message

    def _get(self, model_id: str) -> _Served:
        served = self._served.get(model_id)
        if served is None:
            if model_id in self._refusals:
                raise invalid_request(self._refusals[model_id], param="model", code="model_not_supported")
            raise model_not_found(model_id)
        return served

    async def start(self, spec: ModelSpec, options: EngineOptions) -> WorkerEngine:
        """Load `spec` in a new worker and serve it under `spec.id`."""
        engine = await WorkerEngine.start(spec, options)
        self._served[spec.id] = _Served(engine, spec, options)
        return engine

    async def acquire(self, model_id: str) -> WorkerEngine:
        """The engine serving `model_id` (404 if none); a worker that died is started again first."""
        served = self._get(model_id)
        if served.engine.alive:
            return served.engine
        async with served.restart_lock:
            if served.engine.alive:
                return served.engine
            log.warning("the worker for %s is down; starting it again", model_id)
            await served.engine.close()
            try:
                served.engine = await WorkerEngine.start(served.spec, served.options)
            except EngineStartError as exc:
                log.error("cannot restart %s: %s", model_id, exc)
                raise APIError(
                    503,
                    f"The model `{model_id}` is not available right now.",
                    type="server_error",
                    code="model_unavailable",
                ) from exc
            return served.engine

    def card(self, model_id: str) -> ModelCard:
        """The /v1/models entry of `model_id`."""
        served = self._get(model_id)
        context = served.engine.info.context_length
        return ModelCard(
            id=model_id,
            created=served.created,
            owned_by=served.spec.owned_by,
            context_length=context,
            max_model_len=context,
        )

    def cards(self) -> list[ModelCard]:
        """Every served model."""
        return [self.card(model_id) for model_id in self._served]

    def status(self) -> dict[str, bool]:
        """Model id -> whether its engine is up."""
        return {model_id: served.engine.alive for model_id, served in self._served.items()}

    async def close(self) -> None:
        """Stop every worker."""
        await asyncio.gather(*(s.engine.close() for s in self._served.values()), return_exceptions=True)
        self._served.clear()
