"""GET /v1/audit (search the audit log) and GET /v1/audit/verify (check its hash chain): admin scope.

The same log and the same checks as `hearth audit search` and `hearth audit verify`, for the console
and any other client; records are read in a thread (the log may be large).
"""

from __future__ import annotations

import asyncio
import datetime as dt
from collections import deque
from pathlib import Path
from typing import Annotated, Any, Literal

import msgspec
from litestar import Router, get
from litestar.di import Provide
from litestar.openapi.datastructures import ResponseSpec
from litestar.params import Parameter

from server.http.errors import APIError, ErrorResponse
from server.security.app_security import Security
from server.security.audit import parse, read_records, verify
from server.security.keys import KeyStoreError, parse_duration
from server.security.locations import audit_dir


class AuditRecords(msgspec.Struct):
    """Matching records, newest first (at most `limit`); `hash` and `prev` are left out."""

    data: list[dict[str, Any]]
    object: Literal["list"] = "list"


class AuditVerification(msgspec.Struct, kw_only=True):
    """Whether the whole chain holds: the records checked, and the first broken one if any."""

    ok: bool
    records: int
    broken: str | None = None
    object: Literal["audit.verification"] = "audit.verification"


def _search(
    directory: Path, model: str | None, key: str | None, event: str | None, since: dt.datetime | None, limit: int
) -> list[dict[str, Any]]:
    found: deque[dict[str, Any]] = deque(maxlen=limit)
    for _path, _number, line in read_records(directory):
        try:
            record = parse(line)
        except msgspec.DecodeError:
            continue
        if model and record.get("model") != model:
            continue
        if key and record.get("key") != key:
            continue
        if event and record.get("event") != event:
            continue
        if since is not None and dt.datetime.fromisoformat(record["time"]) < since:
            continue
        record.pop("hash", None)
        record.pop("prev", None)
        found.append(record)
    return list(reversed(found))


_BAD = {400: ResponseSpec(data_container=ErrorResponse, description="Invalid filter", generate_examples=False)}


@get("/audit", summary="Search the audit log", responses=_BAD)
async def search_audit(
    security: Security,
    model: str | None = None,
    key: str | None = None,
    event: str | None = None,
    since: Annotated[str | None, Parameter(description="only records newer than this, e.g. 15m, 2h, 7d")] = None,
    limit: Annotated[int, Parameter(ge=1, le=10_000)] = 200,
) -> AuditRecords:
    """Records matching every filter given, newest first."""
    start = None
    if since:
        try:
            start = dt.datetime.now(dt.UTC) - dt.timedelta(seconds=parse_duration(since))
        except KeyStoreError as exc:
            raise APIError(400, str(exc), param="since") from exc
    directory = audit_dir(security.settings)
    return AuditRecords(data=await asyncio.to_thread(_search, directory, model, key, event, start, limit))


@get("/audit/verify", summary="Verify the audit log's hash chain")
async def verify_audit(security: Security) -> AuditVerification:
    """Check every record's hash and its link to the one before it."""
    count, broken = await asyncio.to_thread(verify, audit_dir(security.settings))
    return AuditVerification(ok=broken is None, records=count, broken=None if broken is None else str(broken))


def router(security: Security) -> Router:
    """The /v1/audit routes, on this app's audit log."""
    return Router(
        path="/v1",
        route_handlers=[search_audit, verify_audit],
        dependencies={"security": Provide(lambda: security, sync_to_thread=False)},
        tags=["audit"],
    )
