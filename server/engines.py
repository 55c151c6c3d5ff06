"""The models this server serves, each an `Engine` running in its own worker process."""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass, field

from adapters.base import EngineOptions
from adapters.sandbox import Confinement
from adapters.worker import EngineStartError, RunnerExitHook, WorkerEngine
from hub.models import ModelSpec
from server.errors import APIError, model_not_found
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

    def __init__(self, confinement: Confinement | None = None, on_runner_exit: RunnerExitHook | None = None) -> None:
        self._served: dict[str, _Served] = {}
        self._confinement = confinement
        self._on_runner_exit = on_runner_exit

    def _get(self, model_id: str) -> _Served:
        served = self._served.get(model_id)
        if served is None:
            raise model_not_found(model_id)
        return served

    async def start(self, spec: ModelSpec, options: EngineOptions) -> WorkerEngine:
        """Load `spec` in a new worker and serve it under `spec.id`."""
        engine = await WorkerEngine.start(spec, options, confinement=self._confinement, on_exit=self._on_runner_exit)
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
                served.engine = await WorkerEngine.start(
                    served.spec, served.options, confinement=self._confinement, on_exit=self._on_runner_exit
                )
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

    def device_of(self, model_id: str) -> str | None:
        """The device `model_id` runs on, or None if it is not served here."""
        served = self._served.get(model_id)
        return served.engine.info.device if served is not None else None

    def status(self) -> dict[str, bool]:
        """Model id -> whether its engine is up."""
        return {model_id: served.engine.alive for model_id, served in self._served.items()}

    async def close(self) -> None:
        """Stop every worker."""
        await asyncio.gather(*(s.engine.close() for s in self._served.values()), return_exceptions=True)
        self._served.clear()
