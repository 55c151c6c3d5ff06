"""GET and HEAD / (the console's page) and GET /console/{path} (its scripts, styles and Swagger UI's files).

Files are kept gzip-compressed and sent that way to every browser that accepts it (all do);
others get them decompressed. Only names listed in the bundle's manifest are served.
"""

from __future__ import annotations

import gzip
from typing import Any

from litestar import Request, Response, Router, get, route
from litestar.di import Provide
from litestar.enums import HttpMethod
from litestar.exceptions import NotFoundException

from server.console.bundle import Asset, ConsoleBundle

# The page loads nothing from elsewhere and talks only to this server.
_CSP = (
    "default-src 'self'; img-src 'self' data:; style-src 'self' 'unsafe-inline'; "
    "connect-src 'self'; frame-ancestors 'none'; base-uri 'self'"
)


def _send(
    asset: Asset, request: Request[Any, Any, Any], cache: str, extra: dict[str, str] | None = None
) -> Response[bytes]:
    headers = {"cache-control": cache, "x-content-type-options": "nosniff", "vary": "accept-encoding", **(extra or {})}
    if "gzip" in request.headers.get("accept-encoding", ""):
        headers["content-encoding"] = "gzip"
        return Response(asset.gzipped, media_type=asset.media_type, headers=headers)
    return Response(gzip.decompress(asset.gzipped), media_type=asset.media_type, headers=headers)


# HEAD too: uptime checks and `curl -I` probe the address `make run` prints (uvicorn sends no body).
@route("/", http_method=[HttpMethod.GET, HttpMethod.HEAD], include_in_schema=False)
async def page(request: Request[Any, Any, Any], bundle: ConsoleBundle) -> Response[bytes]:
    """The console (a single page; its views are `#/...` fragments)."""
    asset = bundle.get("index.html")
    if asset is None:
        raise NotFoundException("The console is not built; run `make console`.")
    return _send(asset, request, "no-cache", {"content-security-policy": _CSP})


@get("/console/{name:path}", include_in_schema=False)
async def asset(name: str, request: Request[Any, Any, Any], bundle: ConsoleBundle) -> Response[bytes]:
    """One of the console's files."""
    found = bundle.get(name.lstrip("/"))
    if found is None:
        raise NotFoundException(f"No console file {name!r}.")
    # Vite names its outputs by content hash, so they never change; the rest may.
    cache = "public, max-age=31536000, immutable" if name.startswith("/assets/") else "public, max-age=3600"
    return _send(found, request, cache)


def router(bundle: ConsoleBundle) -> Router:
    """The console's routes, serving `bundle`."""
    return Router(
        path="/",
        route_handlers=[page, asset],
        dependencies={"bundle": Provide(lambda: bundle, sync_to_thread=False)},
    )
