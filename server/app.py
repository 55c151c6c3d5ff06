"""`create_app(settings)` builds the whole server; its lifespan owns every resource."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from importlib.metadata import PackageNotFoundError, version

from litestar import Litestar
from litestar.datastructures import State
from litestar.di import Provide
from litestar.openapi import OpenAPIConfig

from hub.models import resolve_model
from server.embedders import EmbedderRegistry, resolve_embedding_model
from server.engines import EngineRegistry
from server.errors import EXCEPTION_HANDLERS
from server.response_store import ResponseStore
from server.routes import chat, completions, embeddings, health, models, rerank, responses, workflows
from server.settings import Settings
from server.translate import SamplingDefaults
from server.workflows.service import workflows_lifespan

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


def _embedders(state: State) -> EmbedderRegistry:
    registry: EmbedderRegistry = state.embedders
    return registry


def _response_store(state: State) -> ResponseStore:
    store: ResponseStore = state.responses
    return store


def create_app(settings: Settings) -> Litestar:
    """Build the Litestar app for `settings`; models load when the app starts."""
    fingerprint = f"hearth-{hearth_version()}"

    @asynccontextmanager
    async def lifespan(app: Litestar) -> AsyncIterator[None]:
        registry = EngineRegistry()
        embedders = EmbedderRegistry()
        app.state.engines = registry
        app.state.embedders = embedders
        app.state.responses = ResponseStore(settings.responses_store_size)
        try:
            spec = resolve_model(settings.model, settings.model_path)
            embedding_spec = resolve_embedding_model(settings.embedding_model, settings.embedding_model_path)
            await registry.start(spec, settings.engine_options())
            embedders.note_chat_models([spec.id])
            if embedding_spec is not None:
                await embedders.start(embedding_spec, settings.device)
                registry.refuse(
                    embedding_spec.id,
                    f"The model `{embedding_spec.id}` is an embedding model; use /v1/embeddings or /v1/rerank.",
                )
            yield
        finally:
            await asyncio.gather(registry.close(), embedders.close())

    sampling = settings.sampling_defaults()

    def _fingerprint() -> str:
        return fingerprint

    def _sampling() -> SamplingDefaults:
        return sampling

    return Litestar(
        route_handlers=[
            chat.router,
            completions.router,
            embeddings.router,
            rerank.router,
            responses.router,
            models.router,
            workflows.router,
            health.health,
            health.openapi_document,
        ],
        lifespan=[lifespan, workflows_lifespan(settings)],
        dependencies={
            "engines": Provide(_engines, sync_to_thread=False),
            "embedders": Provide(_embedders, sync_to_thread=False),
            "response_store": Provide(_response_store, sync_to_thread=False),
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
