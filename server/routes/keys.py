"""GET/POST /v1/keys and DELETE /v1/keys/{name}: manage API keys over HTTP (admin scope).

The same store as `hearth keys`; a created key is in the response once and never again.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

import msgspec
from litestar import Request, Router, delete, get, post
from litestar.di import Provide
from litestar.openapi.datastructures import ResponseSpec
from msgspec import Meta

from hub.names import InvalidNameError
from server.http.errors import APIError, ErrorResponse
from server.security.app_security import Security
from server.security.keys import ApiKey, KeyStoreError, parse_duration

KeyName = Annotated[str, Meta(pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$", description="letters, digits, . _ -")]


def _refusals(status: int, description: str) -> dict[int, ResponseSpec]:
    """The documented errors of a key route: a malformed request, and the one refusal its action adds."""
    return {
        code: ResponseSpec(data_container=ErrorResponse, description=text, generate_examples=False)
        for code, text in ((400, "Invalid request"), (status, description))
    }


class KeyCreateRequest(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """A key to create."""

    name: KeyName
    scope: Literal["inference", "admin"]
    expires: Annotated[str, Meta(pattern=r"^[1-9][0-9]{0,5}[smhdw]$")] | None = None
    requests_per_minute: Annotated[int, Meta(ge=0, le=1_000_000)] = 0
    tokens_per_minute: Annotated[int, Meta(ge=0, le=1_000_000_000)] = 0


class KeyInfo(msgspec.Struct, kw_only=True):
    """A key as listed: never the key itself."""

    name: str
    scope: str
    prefix: str
    created: int
    expires: int | None
    requests_per_minute: int
    tokens_per_minute: int
    object: Literal["api_key"] = "api_key"


class CreatedKey(KeyInfo, kw_only=True):
    """A new key: `key` is shown in this response only."""

    key: str


class KeyList(msgspec.Struct):
    """Every key."""

    data: list[KeyInfo]
    object: Literal["list"] = "list"


def _info(key: ApiKey) -> dict[str, Any]:
    return {
        "name": key.name,
        "scope": key.scope,
        "prefix": key.prefix,
        "created": int(key.created),
        "expires": int(key.expires) if key.expires is not None else None,
        "requests_per_minute": key.requests_per_minute,
        "tokens_per_minute": key.tokens_per_minute,
    }


def _caller(request: Request[Any, Any, Any]) -> str | None:
    name: str | None = request.scope.get("state", {}).get("api_key")
    return name


@get("/keys", summary="List API keys")
async def list_keys(security: Security) -> KeyList:
    """Every key's name, scope, prefix, dates and limits."""
    return KeyList(data=[KeyInfo(**_info(key)) for key in security.store.records()])


@post("/keys", summary="Create an API key", status_code=201, responses=_refusals(409, "A key of that name exists"))
async def create_key(data: KeyCreateRequest, request: Request[Any, Any, Any], security: Security) -> CreatedKey:
    """Create a key; the response carries the key itself, once."""
    try:
        expires = parse_duration(data.expires) if data.expires else None
        secret, key = security.store.create(
            data.name, data.scope, expires, data.requests_per_minute, data.tokens_per_minute
        )
    except InvalidNameError as exc:
        raise APIError(400, str(exc), param="name") from exc
    except KeyStoreError as exc:
        raise APIError(409, str(exc), param="name", code="key_exists") from exc
    security.audit("key_created", key=key.name, scope=key.scope, expires=key.expires, by=_caller(request))
    return CreatedKey(**_info(key), key=secret)


@delete(
    "/keys/{name:str}", summary="Revoke an API key", status_code=200, responses=_refusals(404, "No key of that name")
)
async def revoke_key(name: str, request: Request[Any, Any, Any], security: Security) -> KeyInfo:
    """Delete a key; requests with it are refused from now on."""
    try:
        key = security.store.revoke(name)
    except KeyStoreError as exc:
        raise APIError(404, str(exc), param="name", code="key_not_found") from exc
    security.audit("key_revoked", key=key.name, scope=key.scope, by=_caller(request))
    return KeyInfo(**_info(key))


def router(security: Security) -> Router:
    """The /v1/keys routes, bound to this app's key store and audit log."""
    return Router(
        path="/v1",
        route_handlers=[list_keys, create_key, revoke_key],
        dependencies={"security": Provide(lambda: security, sync_to_thread=False)},
        tags=["keys"],
    )
