"""GET/PUT /v1/services/{name}/tuning: one service's engine settings, read and applied at run time
(admin scope). (GET /v1/tuning, routes/tuning.py on main, shows the start-up settings and the last
`hearth bench` report; this one changes a running service.)

Applying reloads the service with the new settings at once, so the next request (or the console's
"measure") runs on them; they last until the server restarts.
"""

from __future__ import annotations

from litestar import Router, get, put
from litestar.openapi.datastructures import ResponseSpec

from server.http.errors import APIError, ErrorResponse
from server.serving.scheduler import Scheduler
from server.serving.tuning import Tuned, Tuning, retuned, tuning_of

_ERRORS = {
    code: ResponseSpec(data_container=ErrorResponse, description=text, generate_examples=False)
    for code, text in (
        (400, "Invalid settings"),
        (404, "Unknown model"),
        (409, "The model is busy"),
        (503, "It failed to load"),
    )
}


def _tuned(scheduler: Scheduler, name: str) -> Tuned:
    status = next(m for m in scheduler.status().models if m.id == name)
    return Tuned(id=name, tuning=tuning_of(scheduler.deployment(name)), status=status)


@get("/services/{name:str}/tuning", summary="A service's engine settings", responses=_ERRORS)
async def get_tuning(name: str, scheduler: Scheduler) -> Tuned:
    """Threads, KV-cache size and precision, batch size, context cap, inference precision,
    keep-alive and priority of the service `name`, with its status."""
    scheduler.deployment(name)
    return _tuned(scheduler, name)


@put("/services/{name:str}/tuning", summary="Apply engine settings (reloads the service)", responses=_ERRORS)
async def put_tuning(name: str, data: Tuning, scheduler: Scheduler) -> Tuned:
    """Reload the service `name` with these settings (refused with 409 while it serves requests)."""
    deployment = retuned(scheduler.deployment(name), data)
    if deployment.kind != "chat":
        raise APIError(400, f"`{name}` is not a chat model; only chat services are tuned here.", param="name")
    if not await scheduler.retune(name, deployment):
        raise APIError(409, f"`{name}` is serving requests; apply again when it is idle.", code="model_busy")
    return _tuned(scheduler, name)


router = Router(path="/v1", route_handlers=[get_tuning, put_tuning], tags=["tuning"])
