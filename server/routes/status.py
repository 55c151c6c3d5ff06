"""GET /v1/status (what is loaded, where, at what cost, who waits) and GET /metrics (Prometheus)."""

from __future__ import annotations

from litestar import Response, get

from server.serving.metrics import CONTENT_TYPE, Metrics
from server.serving.scheduler import Scheduler
from server.serving.status import Status


@get("/v1/status", summary="Loaded models, memory and queues", tags=["status"])
async def status(scheduler: Scheduler) -> Status:
    """Every service: state, device, runner pid, memory, idle time, keep-alive, running and queued requests."""
    return scheduler.status()


@get("/metrics", summary="Prometheus metrics", include_in_schema=False)
async def metrics(metrics: Metrics) -> Response[bytes]:
    """Request counts, latencies, tokens and the scheduler's state in Prometheus' text format."""
    return Response(metrics.render(), media_type=CONTENT_TYPE)
