"""GET /v1/status (what is loaded, where, at what cost, who waits), GET /v1/status/live (counters
for live charts), POST /v1/status/unload, and GET /metrics (Prometheus)."""

from __future__ import annotations

import msgspec
from litestar import Response, get, post

from server.http.openapi import NOT_FOUND
from server.http.recent_errors import RecentErrors
from server.serving.live import LiveSnapshot, live_snapshot
from server.serving.metrics import CONTENT_TYPE, Metrics
from server.serving.scheduler import Scheduler
from server.serving.status import ModelStatus, Status


class UnloadRequest(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """A model to unload now."""

    model: str


@get("/v1/status", summary="Loaded models, memory and queues", tags=["status"])
async def status(scheduler: Scheduler) -> Status:
    """Every service: state, device, runner pid, memory, idle time, keep-alive, running and queued requests."""
    return scheduler.status()


@get("/v1/status/live", summary="Status and cumulative counters for live charts", tags=["status"])
async def live(scheduler: Scheduler, metrics: Metrics, recent_errors: RecentErrors) -> LiveSnapshot:
    """The status, the machine's memory and CPU, per model the tokens, time-to-first-token sums
    and requests since start (poll it every 1-2 s and difference two answers to get rates), and the
    newest failed requests (time, method, path, status, model, the error's message; no request
    content), newest first."""
    snapshot = live_snapshot(metrics, scheduler)
    return msgspec.structs.replace(snapshot, recent_errors=recent_errors.newest_first())


@post(
    "/v1/status/unload",
    summary="Unload a model (`hearth stop`)",
    tags=["status"],
    status_code=200,
    responses=NOT_FOUND,
)
async def unload(scheduler: Scheduler, data: UnloadRequest) -> ModelStatus:
    """Unload the model now, or as soon as its running requests end; its status line afterwards.
    It loads again on its next request. Needs an admin key."""
    return await scheduler.unload(data.model)


@get("/metrics", summary="Prometheus metrics", include_in_schema=False)
async def metrics(metrics: Metrics) -> Response[bytes]:
    """Request counts, latencies, tokens and the scheduler's state in Prometheus' text format."""
    return Response(metrics.render(), media_type=CONTENT_TYPE)
