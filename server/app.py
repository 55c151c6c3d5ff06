"""`create_app(settings)` builds the whole server; its lifespan owns every resource."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from importlib.metadata import PackageNotFoundError, version

from litestar import Litestar
from litestar.datastructures import State
from litestar.di import Provide
from litestar.openapi import OpenAPIConfig

from hub.models import resolve_model
from server.engines import EngineRegistry
from server.errors import EXCEPTION_HANDLERS
from server.routes import chat, completions, health, keys, models
from server.security.service import Security
from server.settings import Settings
from server.translate import SamplingDefaults

log = logging.getLogger(__name__)


def hearth_version() -> str:
    """The installed version of Hearth."""
    try:
        return version("hearth")
    except PackageNotFoundError:
        return "0.0.0"


def _engines(state: State) -> EngineRegistry:
    registry: EngineRegistry = state.engines
    return registry


def create_app(settings: Settings) -> Litestar:
    """Build the Litestar app for `settings`; models load when the app starts."""
    fingerprint = f"hearth-{hearth_version()}"
    security = Security(settings)

    @asynccontextmanager
    async def lifespan(app: Litestar) -> AsyncIterator[None]:
        registry = EngineRegistry(security.confinement(), on_runner_exit=security.runner_exit)
        app.state.engines = registry
        security.guard.device_of = registry.device_of
        try:
            spec = resolve_model(settings.model, settings.model_path)
            await registry.start(spec, settings.engine_options())
            yield
        finally:
            await registry.close()

    sampling = settings.sampling_defaults()

    def _fingerprint() -> str:
        return fingerprint

    def _sampling() -> SamplingDefaults:
        return sampling

    return Litestar(
        route_handlers=[
            chat.router,
            completions.router,
            models.router,
            health.health,
            health.openapi_document,
            keys.router(security),
        ],
        lifespan=[security.lifespan, lifespan],
        middleware=[security.middleware()],
        cors_config=security.cors(),
        dependencies={
            "engines": Provide(_engines, sync_to_thread=False),
            "fingerprint": Provide(_fingerprint, sync_to_thread=False),
            "sampling": Provide(_sampling, sync_to_thread=False),
        },
        exception_handlers=EXCEPTION_HANDLERS,  # type: ignore[arg-type]
        request_max_body_size=settings.max_body_bytes,
        openapi_config=OpenAPIConfig(
            title="Hearth",
            version=hearth_version(),
            path="/docs",
            description="A local, OpenAI-compatible inference server.",
        ),
        logging_config=None,
    )
