"""Request ids, one structured log line per request, and request counts for /metrics.

The ASGI middleware gives every request an id (the client's `X-Request-Id` when it is sane, else a
new one), returns it in the `X-Request-Id` response header, counts the request by endpoint, model
and status, and logs it with those fields. `JsonFormatter` writes log records as JSON lines.
"""

from __future__ import annotations

import json
import logging
import re
import time
import uuid
from collections.abc import Awaitable, Callable, Collection
from contextvars import ContextVar
from datetime import UTC, datetime
from typing import Any

from litestar.enums import ScopeType
from litestar.types import ASGIApp, Message, Receive, Scope, Send

from server.http.recent_errors import BODY_PREFIX_BYTES, ErrorRecord, RecentErrors, error_message, is_recorded

log = logging.getLogger("hearth.access")

REQUEST_ID_HEADER = "x-request-id"
# Printable, short, no spaces: safe to echo in a header and to write into a log line.
_SANE_ID = re.compile(r"^[A-Za-z0-9._:/+=-]{1,128}$")
# Attributes every LogRecord has; anything else was passed with `extra=` and belongs in the JSON.
_RECORD_FIELDS = frozenset(logging.makeLogRecord({}).__dict__) | {"message", "asctime"}
# The id of the request the running task serves. A context variable, not state: asyncio copies it
# into every task a request starts, so what the scheduler or a route logs carries the id too.
_REQUEST_ID: ContextVar[str | None] = ContextVar("hearth_request_id", default=None)


class RequestIdFilter(logging.Filter):
    """Adds `request_id` to records logged while a request is being served."""

    def filter(self, record: logging.LogRecord) -> bool:
        """Tag `record` (never drops it)."""
        if not hasattr(record, "request_id"):
            request_id = _REQUEST_ID.get()
            if request_id is not None:
                record.request_id = request_id
        return True


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, message, and the record's `extra` fields."""

    def format(self, record: logging.LogRecord) -> str:
        """Render `record` as a JSON line."""
        entry: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        entry.update({k: v for k, v in record.__dict__.items() if k not in _RECORD_FIELDS})
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return json.dumps(entry, default=str)


def request_id_of(scope: Scope) -> str:
    """The id of the request in `scope` (set by the middleware)."""
    return str(scope.get("state", {}).get("request_id", ""))


def set_model(scope: Scope, model: str) -> None:
    """Label the request in `scope` with the model it asked for (for metrics and the log line)."""
    scope.setdefault("state", {})["model"] = model


def _request_id(scope: Scope) -> str:
    """The client's `X-Request-Id` when it is sane, else a new one."""
    incoming = next((v.decode("latin-1") for k, v in scope["headers"] if k == b"x-request-id"), "")
    return incoming if _SANE_ID.match(incoming) else uuid.uuid4().hex


def _log_request(method: str, path: str, status: int, request_id: str, model: str | None, started: float) -> None:
    log.info(
        "%s %s %s",
        method,
        path,
        status,
        extra={
            "request_id": request_id,
            "method": method,
            "path": path,
            "status": status,
            "model": model,
            "duration_ms": round((time.perf_counter() - started) * 1000, 2),
        },
    )


def unmatched_route_hook(count: Callable[[str, str, str], None]) -> Callable[[Message, Scope], Awaitable[None]]:
    """A `before_send` hook for answers no route produced (an unknown path, a wrong method):
    Litestar runs middleware only around matched routes, so these get their `X-Request-Id`, their
    count (endpoint "unmatched": a client's paths must not grow the metrics) and log line here."""

    async def hook(message: Message, scope: Scope) -> None:
        if message["type"] != "http.response.start" or scope["type"] != ScopeType.HTTP:
            return
        state = scope.setdefault("state", {})
        if "request_id" in state:  # the middleware saw it
            return
        request_id = state["request_id"] = _request_id(scope)
        message["headers"] = [*message.get("headers", []), (b"x-request-id", request_id.encode())]
        status = message["status"]
        count("unmatched", "", str(status))
        _log_request(str(scope.get("method", "")), scope["path"], status, request_id, None, time.perf_counter())

    return hook


def observability_middleware(
    count: Callable[[str, str, str], None], models: Collection[str], recent: RecentErrors | None = None
) -> Callable[[ASGIApp], ASGIApp]:
    """The middleware factory for `Litestar(middleware=[...])`; `count(endpoint, model, status)`
    records each finished request, and `recent` keeps the ones answered with a 4xx or 5xx."""

    def factory(app: ASGIApp) -> ASGIApp:
        async def middleware(scope: Scope, receive: Receive, send: Send) -> None:
            if scope["type"] != ScopeType.HTTP:
                await app(scope, receive, send)
                return
            method = str(scope.get("method", ""))
            request_id = _request_id(scope)
            state = scope.setdefault("state", {})
            state["request_id"] = request_id
            token = _REQUEST_ID.set(request_id)
            status = 500
            started = time.perf_counter()
            error_body = bytearray()

            async def send_with_id(message: Message) -> None:
                nonlocal status
                if message["type"] == "http.response.start":
                    status = message["status"]
                    message["headers"] = [*message.get("headers", []), (b"x-request-id", request_id.encode())]
                elif message["type"] == "http.response.body" and status >= 400 and recent is not None:
                    error_body.extend(message.get("body", b"")[: BODY_PREFIX_BYTES - len(error_body)])
                await send(message)

            try:
                await app(scope, receive, send_with_id)
            finally:
                asked = str(state.get("model", ""))
                # Only served ids become label values: a client's typo must not grow the metrics.
                model = asked if asked in models else ""
                endpoint = str(scope.get("path_template", scope["path"]))
                count(endpoint, model, str(status))
                _log_request(method, scope["path"], status, request_id, asked or None, started)
                if recent is not None and is_recorded(scope["path"], status):
                    recent.add(
                        ErrorRecord(
                            time=time.time(),
                            method=method,
                            path=scope["path"][:200],
                            status=status,
                            model=asked[:200],
                            message=error_message(bytes(error_body)),
                            request_id=request_id,
                        )
                    )
                _REQUEST_ID.reset(token)

        return middleware

    return factory
