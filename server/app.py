"""`create_app(settings)` builds the whole server; its lifespan owns every resource."""

from __future__ import annotations

import asyncio
import dataclasses
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from importlib.metadata import PackageNotFoundError, version

from litestar import Litestar
from litestar.datastructures import State
from litestar.di import Provide
from litestar.openapi import OpenAPIConfig

from hub.catalog import Catalog, local_targets
from hub.jobs import JobRunner
from hub.store import ArtifactStore
from server.http.errors import EXCEPTION_HANDLERS
from server.http.observability import observability_middleware, unmatched_route_hook
from server.inference.call import EngineDoor
from server.inference.chat import route as chat
from server.inference.completions import route as completions
from server.inference.embeddings import rerank
from server.inference.embeddings import route as embeddings
from server.inference.responses import route as responses
from server.inference.responses.history import ResponseStore
from server.inference.tokenize import route as tokenize
from server.inference.translate import SamplingDefaults
from server.routes import health, keys, models, status, system, workflows
from server.routes import hub as hub_routes
from server.security.app_security import Security
from server.serving.deployments import deployments, device_budgets, memory_budget
from server.serving.embedders import EmbedderRegistry, resolve_embedding_model
from server.serving.metrics import Metrics
from server.serving.runner import EngineFactory, Limits, confined_worker_factory, start_worker
from server.serving.scheduler import Scheduler
from server.settings import Settings
from server.workflows.manager import workflows_lifespan

log = logging.getLogger(__name__)


def hearth_version() -> str:
    """The installed version of Hearth."""
    try:
        return version("hearth")
    except PackageNotFoundError:
        return "0.0.0"


def _scheduler(state: State) -> Scheduler:
    scheduler: Scheduler = state.scheduler
    return scheduler


def _metrics(state: State) -> Metrics:
    metrics: Metrics = state.metrics
    return metrics


def _door(state: State) -> EngineDoor:
    door: EngineDoor = state.door
    return door


def _embedders(state: State) -> EmbedderRegistry:
    registry: EmbedderRegistry = state.embedders
    return registry


def _response_store(state: State) -> ResponseStore:
    store: ResponseStore = state.responses
    return store


def create_app(settings: Settings, engine_factory: EngineFactory = start_worker) -> Litestar:
    """Build the Litestar app for `settings`; services are read (and checked) here, preloaded
    models load when the app starts, the others on first use. Tests may replace `engine_factory`."""
    fingerprint = f"hearth-{hearth_version()}"
    security = Security(settings)
    if engine_factory is start_worker:
        # Production runners are confined (docs/security.md) and watched: an exit nobody asked
        # for is audited.
        engine_factory = confined_worker_factory(security.confinement(), security.runner_exit)
    limits = Limits(
        max_queue=settings.max_queue,
        queue_timeout_s=settings.queue_timeout_s,
        starvation_s=settings.starvation_s,
        memory_budget_bytes=memory_budget(settings),
        max_concurrency_per_device=settings.max_concurrency_per_device,
    )
    store = ArtifactStore(settings.models_dir)
    services = deployments(settings, store)
    embedding_spec = resolve_embedding_model(settings.embedding_model, settings.embedding_model_path, store)
    served = frozenset(d.name for d in services)

    @asynccontextmanager
    async def lifespan(app: Litestar) -> AsyncIterator[None]:
        budgets: dict[str, int] = {}
        if any(d.device != "CPU" for d in services):
            # Asking OpenVINO which accelerators exist costs ~0.15 s and ~28 MB: only when needed.
            budgets = await asyncio.to_thread(device_budgets, settings)
        scheduler = Scheduler(services, dataclasses.replace(limits, device_budgets=budgets), engine_factory)
        embedders = EmbedderRegistry()
        app.state.scheduler = scheduler
        security.guard.device_of = scheduler.device_of
        app.state.embedders = embedders
        app.state.metrics = Metrics(scheduler)
        app.state.door = EngineDoor(scheduler, app.state.metrics, fingerprint)
        app.state.responses = ResponseStore(settings.responses_store_size)
        app.state.hub = hub_routes.HubState(
            store, JobRunner(hub_routes.classify), settings.hub_max_upload_bytes, local_targets(), Catalog.load()
        )
        try:
            embedders.note_chat_models(scheduler.names())
            if embedding_spec is not None:
                await embedders.start(embedding_spec, settings.device)
                scheduler.refuse(
                    embedding_spec.id,
                    f"The model `{embedding_spec.id}` is an embedding model; use /v1/embeddings or /v1/rerank.",
                )
            await scheduler.start()
            yield
        finally:
            app.state.hub.jobs.close()
            await asyncio.gather(scheduler.close(), embedders.close())

    def _count(endpoint: str, model: str, code: str) -> None:
        metrics: Metrics | None = getattr(app.state, "metrics", None)
        if metrics is not None:
            metrics.requests.labels(endpoint, model, code).inc()

    sampling = settings.sampling_defaults()

    def _sampling() -> SamplingDefaults:
        return sampling

    app = Litestar(
        route_handlers=[
            chat.router,
            completions.router,
            embeddings.router,
            rerank.router,
            responses.router,
            models.router,
            hub_routes.router,
            workflows.router,
            health.health,
            health.openapi_document,
            status.status,
            status.metrics,
            system.system,
            tokenize.router,
            keys.router(security),
        ],
        lifespan=[security.lifespan, lifespan, workflows_lifespan(settings)],
        # Outermost first: the request id is set before authentication and auditing read it.
        middleware=[observability_middleware(_count, served), security.middleware()],
        before_send=[unmatched_route_hook(_count)],
        cors_config=security.cors(),
        dependencies={
            "scheduler": Provide(_scheduler, sync_to_thread=False),
            "metrics": Provide(_metrics, sync_to_thread=False),
            "embedders": Provide(_embedders, sync_to_thread=False),
            "response_store": Provide(_response_store, sync_to_thread=False),
            "door": Provide(_door, sync_to_thread=False),
            "sampling": Provide(_sampling, sync_to_thread=False),
            "hub": Provide(hub_routes.provide_hub, sync_to_thread=False),
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
    return app
