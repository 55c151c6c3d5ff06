"""`create_app(settings)` builds the whole server; its lifespan owns every resource."""

from __future__ import annotations

import asyncio
import dataclasses
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from importlib.metadata import PackageNotFoundError, version
from typing import Any

from litestar import Litestar
from litestar.datastructures import State
from litestar.di import Provide
from litestar.openapi import OpenAPIConfig
from litestar.openapi.plugins import SwaggerRenderPlugin

from hub.archives import ArchiveLimits
from hub.catalog import Catalog
from hub.jobs import JobRunner
from hub.store import ArtifactStore
from server.batches import routes as batches
from server.batches.runner import batches_lifespan
from server.console import route as console
from server.console.bundle import ConsoleBundle
from server.dialects.anthropic import errors as anthropic_errors
from server.dialects.anthropic import routes as anthropic
from server.dialects.ollama import errors as ollama_errors
from server.dialects.ollama.router import router as ollama_router
from server.http.drain import Drain, shutting_down
from server.http.errors import EXCEPTION_HANDLERS
from server.http.observability import observability_middleware, unmatched_route_hook
from server.http.recent_errors import RecentErrors
from server.inference.call import EngineDoor
from server.inference.chat import route as chat
from server.inference.completions import route as completions
from server.inference.embeddings import rerank
from server.inference.embeddings import route as embeddings
from server.inference.responses import route as responses
from server.inference.responses.history import ResponseStore
from server.inference.tokenize import route as tokenize
from server.limits.json_body import json_body_guard
from server.routes import audit, health, hub_imports, hub_jobs, keys, models, service_tuning, status, system, workflows
from server.routes import hub as hub_routes
from server.routes.tuning import tuning_route
from server.security.app_security import Security
from server.serving.deployments import (
    Deployment,
    deployments,
    device_budgets,
    embedding_deployment,
    installed_resolver,
    memory_budget,
)
from server.serving.metrics import Metrics
from server.serving.prestart import Prestart
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


def _from_state(name: str) -> Provide:
    """A dependency answered by the app state's `name` (set by the lifespan)."""

    def provide(state: State) -> Any:
        return getattr(state, name)

    return Provide(provide, sync_to_thread=False)


def _constant(value: object) -> Provide:
    """A dependency that is always `value`."""

    def provide() -> Any:
        return value

    return Provide(provide, sync_to_thread=False)


def create_app(
    settings: Settings, engine_factory: EngineFactory = start_worker, prestarted: Prestart | None = None
) -> Litestar:
    """Build the Litestar app for `settings`; services are read (and checked) here, preloaded
    models load when the app starts, the others on first use. Tests may replace `engine_factory`.
    `prestarted`: a worker `hearth serve` launched before building the app (server/serving/prestart.py),
    which the app adopts or stops."""
    fingerprint = f"hearth-{hearth_version()}"
    security = Security(settings)
    drain = Drain(settings.server.shutdown_grace_s)
    # Refusals of the Anthropic and Ollama dialects' paths (401, 403, 429) in their own error shapes.
    security.guard.refusal_bodies = (
        ("/v1/messages", anthropic_errors.refusal_body),
        ("/api/", ollama_errors.refusal_body),
    )
    if engine_factory is start_worker:
        # Production runners are confined (docs/security.md) and watched: an exit nobody asked
        # for is audited.
        engine_factory = confined_worker_factory(security.confinement(), security.runner_exit)
        if prestarted is not None:
            engine_factory = prestarted.factory(engine_factory, security.runner_exit)
    limits = Limits(
        max_queue=settings.scheduler.max_queue,
        queue_timeout_s=settings.scheduler.queue_timeout_s,
        starvation_s=settings.scheduler.starvation_s,
        memory_budget_bytes=memory_budget(settings),
        max_concurrency_per_device=settings.scheduler.max_concurrency_per_device,
    )
    store = ArtifactStore(settings.models_dir)
    recent_errors = RecentErrors(settings.server.recent_errors)
    planned = prestarted.planned if prestarted is not None else None
    services = list(planned) if planned is not None else deployments(settings, store)
    embedding = embedding_deployment(settings, store)
    if embedding is not None and embedding.name not in {d.name for d in services}:
        # The embedding model is scheduled like the services: budgeted, evictable, in /v1/status.
        services.append(embedding)
    # Model ids that may become metric labels: the services, and installed models once asked for.
    served = {d.name for d in services}
    find_installed = installed_resolver(settings, store)

    def resolve(name: str) -> Deployment | None:
        found = find_installed(name)
        if found is not None:
            served.add(name)
        return found

    @asynccontextmanager
    async def lifespan(app: Litestar) -> AsyncIterator[None]:
        budgets: dict[str, int] = {}
        if any(d.device != "CPU" for d in services):
            # Asking OpenVINO which accelerators exist costs ~0.2 s and ~28 MB: only when a device
            # other than the CPU may be used, and a GPU could be there (adapters/hardware.py).
            budgets = await asyncio.to_thread(device_budgets, settings)
        scheduler = Scheduler(services, dataclasses.replace(limits, device_budgets=budgets), engine_factory, resolve)
        app.state.scheduler = scheduler
        security.guard.device_of = scheduler.device_of
        app.state.metrics = Metrics(scheduler)
        app.state.metrics.registry.register(security.audit_collector())
        app.state.door = EngineDoor(scheduler, app.state.metrics, fingerprint)
        drain.on_cut(lambda: app.state.door.interrupt(shutting_down))
        app.state.responses = ResponseStore(
            settings.responses.responses_store_size, settings.responses.responses_store_max_bytes
        )
        archive_limits = ArchiveLimits(
            max_bytes=settings.hub.hub_max_unpacked_bytes, max_ratio=settings.hub.hub_max_unpack_ratio
        )
        app.state.hub = hub_routes.HubState(
            store,
            # A job cancelled after its work was done has its artifact removed again.
            JobRunner(rollback=lambda manifest: store.remove(manifest.name)),
            settings.hub.hub_max_upload_bytes,
            archive_limits,
            Catalog.load(),
            settings.hub.hub_max_import_files,
        )
        try:
            # Preloading while uvicorn binds: the port answers (GET /health: 503 `loading`) at once.
            await scheduler.start(in_background=settings.scheduler.preload_while_binding)
            yield
        finally:
            app.state.hub.jobs.close()
            await scheduler.close()
            if prestarted is not None:
                await asyncio.to_thread(prestarted.discard)

    def _count(endpoint: str, model: str, code: str) -> None:
        metrics: Metrics | None = getattr(app.state, "metrics", None)
        if metrics is not None:
            metrics.requests.labels(endpoint, model, code).inc()

    app = Litestar(
        route_handlers=[
            chat.router,
            completions.router,
            embeddings.router,
            rerank.router,
            responses.router,
            anthropic.router,
            models.router,
            hub_routes.router,
            hub_imports.router,
            hub_jobs.router,
            workflows.router,
            health.health,
            health.openapi_document,
            status.status,
            status.live,
            status.unload,
            status.metrics,
            service_tuning.router,
            system.system,
            tuning_route(settings),
            tokenize.router,
            batches.router,
            keys.router(security),
            audit.router(security),
            console.router(ConsoleBundle()),
            *([ollama_router(settings.ollama)] if settings.ollama.ollama_api else []),
        ],
        lifespan=[
            drain.lifespan,
            security.lifespan,
            lifespan,
            workflows_lifespan(settings),
            batches_lifespan(settings),
        ],
        # Outermost first: the request id is set before authentication and auditing read it; a
        # refusal while shutting down is still logged and counted.
        middleware=[
            observability_middleware(_count, served, recent_errors),
            drain.middleware(),
            security.middleware(),
        ],
        before_send=[unmatched_route_hook(_count)],
        # Every JSON body's nesting is bounded before anything decodes it (docs/security.md).
        before_request=json_body_guard(settings.limits),
        cors_config=security.cors(),
        dependencies={
            "scheduler": _from_state("scheduler"),
            "metrics": _from_state("metrics"),
            "response_store": _from_state("responses"),
            "door": _from_state("door"),
            "batches": _from_state("batches"),
            "sampling": _constant(settings.sampling_defaults()),
            "audit_state": _constant(security.audit_state),
            "limits": _constant(settings.limits),
            "hub": Provide(hub_routes.provide_hub, sync_to_thread=False),
            "recent_errors": _constant(recent_errors),
        },
        exception_handlers=EXCEPTION_HANDLERS,  # type: ignore[arg-type]
        request_max_body_size=settings.server.max_body_bytes,
        openapi_config=OpenAPIConfig(
            title="Hearth",
            version=hearth_version(),
            path="/docs",
            description="A local, OpenAI-compatible inference server.",
            # Swagger UI from the console's bundle: /docs works with no internet.
            render_plugins=[
                SwaggerRenderPlugin(
                    path="/",
                    js_url="/console/vendor/swagger-ui-bundle.js",
                    css_url="/console/vendor/swagger-ui.css",
                    standalone_preset_js_url="/console/vendor/swagger-ui-standalone-preset.js",
                    favicon="<link rel='icon' href='/console/favicon.svg'>",
                )
            ],
        ),
        logging_config=None,
    )
    # `hearth serve` starts the drain on SIGTERM and stops uvicorn when it is over.
    app.state.drain = drain
    return app
