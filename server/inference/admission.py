"""Admit an API call: parse its scheduling fields, wait for a slot, and watch the call to its end."""

from __future__ import annotations

import time
from typing import Any

from litestar import Request

from server.http.disconnect import unless_disconnected
from server.http.errors import invalid_request
from server.http.observability import set_model
from server.inference import protocol as p
from server.serving.metrics import CallObserver, Metrics
from server.serving.scheduler import Lease, Scheduler
from server.serving.services import parse_duration


def keep_alive_seconds(value: float | str | None) -> float | None:
    """A request's `keep_alive` in seconds (None: the service's), or a 400 naming the field."""
    if value is None:
        return None
    try:
        return parse_duration(value)
    except ValueError as exc:
        raise invalid_request(str(exc), param="keep_alive") from None


async def admit(
    request: Request[Any, Any, Any], body: p.GenerationFields, scheduler: Scheduler, metrics: Metrics
) -> tuple[Lease, CallObserver]:
    """Wait (in the model's priority queue) for a lease on `body.model`'s engine.

    A client that disconnects while waiting leaves the queue at once (499).
    """
    return await admit_model(request, body.model, scheduler, metrics, body.priority, body.keep_alive)


async def admit_model(
    request: Request[Any, Any, Any],
    model: str,
    scheduler: Scheduler,
    metrics: Metrics,
    priority: int | None = None,
    keep_alive: float | str | None = None,
) -> tuple[Lease, CallObserver]:
    """`admit` for endpoints whose bodies do not share the generation fields (the Responses API)."""
    set_model(request.scope, model)
    keep_alive_s = keep_alive_seconds(keep_alive)
    asked_at = time.perf_counter()
    lease = await unless_disconnected(request, scheduler.acquire(model, priority, keep_alive_s))
    return lease, metrics.observe(model, lease, asked_at)
