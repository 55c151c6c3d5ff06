"""GET /health and GET /openapi.json."""

from __future__ import annotations

from typing import Any, Literal

import msgspec
from litestar import Request, Response, get
from litestar.openapi.datastructures import ResponseSpec

from server.serving.scheduler import Scheduler


class Health(msgspec.Struct):
    """GET /health."""

    status: Literal["ok", "degraded"]
    models: dict[str, Literal["ready", "unavailable"]]


@get(
    "/health",
    summary="Health of the server and its models",
    responses={503: ResponseSpec(data_container=Health, description="A model is unavailable")},
)
async def health(scheduler: Scheduler) -> Response[Health]:
    """200 when every model can serve (loaded, or loadable on use), 503 when a runner has died."""
    status = scheduler.health()
    ok = all(status.values())
    body = Health(
        status="ok" if ok else "degraded",
        models={model: "ready" if up else "unavailable" for model, up in status.items()},
    )
    return Response(body, status_code=200 if ok else 503)


@get("/openapi.json", include_in_schema=False)
async def openapi_document(request: Request[Any, Any, Any]) -> dict[str, Any]:
    """Hearth's own OpenAPI document, generated from the protocol Structs."""
    return request.app.openapi_schema.to_schema()
