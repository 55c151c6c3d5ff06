"""GET /health and GET /openapi.json."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Literal

import msgspec
from litestar import Request, Response, get
from litestar.openapi.datastructures import ResponseSpec

from server.serving.scheduler import Scheduler

AuditState = Literal["ok", "failing", "off"]


class Health(msgspec.Struct):
    """GET /health."""

    status: Literal["ok", "degraded"]
    models: dict[str, Literal["ready", "unavailable"]]
    # `failing`: the audit log cannot be written, so model calls are refused (docs/security.md).
    audit: Literal["ok", "failing", "off"] = "ok"


@get(
    "/health",
    summary="Health of the server and its models",
    responses={
        503: ResponseSpec(data_container=Health, description="A model is unavailable, or the audit log is failing")
    },
)
async def health(scheduler: Scheduler, audit_state: Callable[[], AuditState]) -> Response[Health]:
    """200 when every model can serve (loaded, or loadable on use) and the audit log is written (or
    off); 503 when a runner has died or the audit log cannot be written."""
    status = scheduler.health()
    audit = audit_state()
    ok = all(status.values()) and audit != "failing"
    body = Health(
        status="ok" if ok else "degraded",
        models={model: "ready" if up else "unavailable" for model, up in status.items()},
        audit=audit,
    )
    return Response(body, status_code=200 if ok else 503)


@get("/openapi.json", include_in_schema=False)
async def openapi_document(request: Request[Any, Any, Any]) -> dict[str, Any]:
    """Hearth's own OpenAPI document, generated from the protocol Structs."""
    return request.app.openapi_schema.to_schema()
