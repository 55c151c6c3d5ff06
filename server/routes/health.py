"""GET /health and GET /openapi.json."""

from __future__ import annotations

from typing import Any

from litestar import Request, Response, get
from litestar.openapi.datastructures import ResponseSpec

from server.embedders import EmbedderRegistry
from server.engines import EngineRegistry
from server.protocol import Health


@get(
    "/health",
    summary="Health of the server and its models",
    responses={503: ResponseSpec(data_container=Health, description="A model is unavailable")},
)
async def health(engines: EngineRegistry, embedders: EmbedderRegistry) -> Response[Health]:
    """200 when every model is ready, 503 when a model's worker has stopped."""
    status = {**engines.status(), **embedders.status()}
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
