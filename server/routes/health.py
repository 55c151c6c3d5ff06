"""GET /health and GET /openapi.json."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Literal

import msgspec
from litestar import Request, Response, get
from litestar.openapi.datastructures import ResponseSpec

from server.serving.scheduler import HealthState, Scheduler

AuditState = Literal["ok", "failing", "off"]


class Health(msgspec.Struct):
    """GET /health."""

    status: Literal["ok", "loading", "degraded"]
    models: dict[str, HealthState]
    # `failing`: the audit log cannot be written, so model calls are refused (docs/security.md).
    audit: Literal["ok", "failing", "off"] = "ok"


@get(
    "/health",
    summary="Health of the server and its models",
    responses={
        503: ResponseSpec(
            data_container=Health,
            description="A model is still loading or unavailable, or the audit log is failing",
        )
    },
)
async def health(scheduler: Scheduler, audit_state: Callable[[], AuditState]) -> Response[Health]:
    """200 when every model can serve (loaded, or loadable on use) and the audit log is written (or
    off); 503 while a preloaded model is still loading (as llama.cpp's server answers), when a
    runner has died or its preload failed, or when the audit log cannot be written."""
    models = scheduler.health()
    audit = audit_state()
    ok = all(state == "ready" for state in models.values()) and audit != "failing"
    loading = any(state == "loading" for state in models.values())
    body = Health(status="ok" if ok else "loading" if loading else "degraded", models=models, audit=audit)
    return Response(body, status_code=200 if ok else 503)


@get("/openapi.json", include_in_schema=False)
async def openapi_document(request: Request[Any, Any, Any]) -> dict[str, Any]:
    """Hearth's own OpenAPI document, generated from the protocol Structs."""
    return request.app.openapi_schema.to_schema()
