"""The ASGI middleware every route passes through: authenticate, apply per-key limits, audit.

Installed once in `create_app` for the whole app, so an endpoint added later is covered by the
scope table in `auth.py` without further work. It reads the model and token counts of a call from
the response itself (the JSON body, or the SSE chunk that carries `usage`), so no route needs to
know about auditing. Streams without `include_usage` are counted as one token per content event
(`tokens_estimated: true`), which is what the engine sends per step. While the audit log cannot be
written, every audited request but the monitoring reads is refused with 503 `audit_unavailable`.
"""

from __future__ import annotations

import hashlib
import math
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal

import msgspec
from litestar.types import ASGIApp, Receive, Scope, Send

from server.http.errors import ErrorDetail, ErrorResponse
from server.security.audit_log import AuditLog
from server.security.auth import Authenticator, Denied, required_scope
from server.security.limits import RateLimiter

AuditText = Literal["off", "sha256", "full"]
_MAX_CAPTURE = 4 * 1024 * 1024
# What is still answered while the audit log cannot be written: how operators see the outage.
_OUTAGE_OK = {("GET", "/metrics"), ("GET", "/v1/status")}
_ERROR_TYPES = {401: "authentication_error", 403: "permission_error", 429: "rate_limit_error", 503: "server_error"}


class _Usage(msgspec.Struct):
    prompt_tokens: int | None = None
    completion_tokens: int | None = None
    input_tokens: int | None = None
    output_tokens: int | None = None


class _Probe(msgspec.Struct):
    """The fields of a request or response body the audit record wants; the rest is skipped."""

    model: str | None = None
    usage: _Usage | None = None


_probe = msgspec.json.Decoder(_Probe)


def _peek(body: bytes) -> _Probe | None:
    try:
        return _probe.decode(body)
    except (msgspec.DecodeError, msgspec.ValidationError, RecursionError):
        # Skipping a field still recurses into it: a body nested past the JSON depth limit
        # (refused already) has no model worth recording.
        return None


# A refusal's body in a dialect's own error shape: (status, message, code) -> JSON.
RefusalBody = Callable[[int, str, str | None], bytes]


@dataclass
class Guard:
    """What the middleware needs: keys, limits, the audit log (None when off) and its text policy;
    `refusal_bodies` names the paths (by prefix) whose clients expect another error shape."""

    auth: Authenticator
    limiter: RateLimiter = field(default_factory=RateLimiter)
    audit: AuditLog | None = None
    audit_text: AuditText = "off"
    device_of: Callable[[str], str | None] = lambda _model: None
    refusal_bodies: tuple[tuple[str, RefusalBody], ...] = ()

    def refusal(self, path: str, status: int, message: str, code: str | None) -> bytes:
        """The body refusing a request to `path`."""
        for prefix, body in self.refusal_bodies:
            if path.startswith(prefix):
                return body(status, message, code)
        return _error(status, message, code)


@dataclass
class _Call:
    """What one request's audit record collects while it runs."""

    status: int = 0
    content_type: bytes = b""
    request_body: list[bytes] = field(default_factory=list)
    response_body: list[bytes] = field(default_factory=list)
    captured: int = 0
    model: str | None = None
    prompt_tokens: int | None = None
    completion_tokens: int | None = None
    events: int = 0

    def take_usage(self, probe: _Probe) -> None:
        self.model = self.model or probe.model
        if probe.usage is not None:
            u = probe.usage
            self.prompt_tokens = u.prompt_tokens if u.prompt_tokens is not None else u.input_tokens
            self.completion_tokens = u.completion_tokens if u.completion_tokens is not None else u.output_tokens

    def scan_sse(self, chunk: bytes) -> None:
        for event in chunk.split(b"\n\n"):
            if not event.startswith(b"data: {"):
                continue
            # A content event (not the role-only first chunk, not the final one) is one engine step.
            if b'"finish_reason":null' in event and b'"content":""' not in event:
                self.events += 1
            if self.model is None or b'"usage":{' in event:
                probe = _peek(event[6:])
                if probe is not None:
                    self.take_usage(probe)


def _error(status: int, denied_message: str, code: str | None) -> bytes:
    detail = ErrorDetail(message=denied_message, type=_ERROR_TYPES.get(status, "invalid_request_error"), code=code)
    return msgspec.json.encode(ErrorResponse(detail))


async def _refuse(
    send: Send, status: int, body: bytes, request_id: str | None, extra: list[tuple[bytes, bytes]]
) -> None:
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()), *extra]
    if request_id is not None:
        headers.append((b"x-request-id", request_id.encode()))
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body, "more_body": False})


class SecurityMiddleware:
    """Authentication, per-key limits and auditing for every HTTP request."""

    def __init__(self, app: ASGIApp, guard: Guard) -> None:
        self.app = app
        self.guard = guard

    async def __call__(self, asgi_scope: Scope, receive: Receive, send: Send) -> None:
        scope: dict[str, Any] = asgi_scope  # type: ignore[assignment]  # read as plain ASGI
        if scope["type"] != "http":
            await self.app(asgi_scope, receive, send)
            return
        started = time.perf_counter()
        method, path = scope["method"], scope["path"]
        headers = dict(scope["headers"])
        client = scope["client"][0] if scope.get("client") else None
        # The observability middleware outside this one names the request and sets the header;
        # without it (tests of this middleware alone) this one does both.
        outer_id = scope.get("state", {}).get("request_id")
        request_id = outer_id or headers.get(b"x-request-id", b"").decode("latin-1")[:64] or uuid.uuid4().hex
        header_id = None if outer_id else request_id
        guard = self.guard
        decision = guard.auth.decide(method, path, headers, client)
        key = decision.key
        audited = guard.audit is not None and required_scope(method, path) != "public"

        def audit(status: int, call: _Call | None = None, reason: str | None = None) -> None:
            if not audited or guard.audit is None:
                return
            fields: dict[str, Any] = {
                "request_id": request_id,
                "key": key.name if key else None,
                "client": client,
                "method": method,
                "endpoint": path,
                "status": status,
                "latency_ms": round((time.perf_counter() - started) * 1000, 3),
                "reason": reason,
            }
            if call is not None:
                fields.update(self._call_fields(call))
            guard.audit.record("request" if reason is None else "refused", **fields)

        if decision.denied is not None:
            denied: Denied = decision.denied
            extra = [(b"www-authenticate", b'Bearer realm="hearth"')] if denied.status == 401 else []
            body = guard.refusal(path, denied.status, denied.message, denied.code)
            await _refuse(send, denied.status, body, header_id, extra)
            audit(denied.status, reason=denied.message)
            return
        if audited and guard.audit is not None and guard.audit.failure is not None and (method, path) not in _OUTAGE_OK:
            # Fail closed: what cannot be audited is not done.
            message = (
                f"Hearth cannot write its audit log ({guard.audit.failure}), so it refuses requests until it "
                f"can; it tries again every {guard.audit.retry_s:g} s."
            )
            retry = str(max(1, math.ceil(guard.audit.retry_s))).encode()
            await _refuse(
                send, 503, guard.refusal(path, 503, message, "audit_unavailable"), header_id, [(b"retry-after", retry)]
            )
            audit(503, reason=message)
            return
        if key is not None and (wait := guard.limiter.admit(key)) is not None:
            message = f"Rate limit reached for API key {key.name!r}; retry in {wait} s."
            body = guard.refusal(path, 429, message, "rate_limit_exceeded")
            await _refuse(send, 429, body, header_id, [(b"retry-after", str(wait).encode())])
            audit(429, reason=message)
            return
        scope.setdefault("state", {})["api_key"] = key.name if key else None
        if not audited and not (key and key.tokens_per_minute):
            await self.app(asgi_scope, receive, send)
            return
        call = _Call()

        async def receive_captured() -> Any:
            message = await receive()
            if message["type"] == "http.request" and call.captured < _MAX_CAPTURE:
                chunk = message.get("body", b"")
                call.request_body.append(chunk)
                call.captured += len(chunk)
            return message

        async def send_captured(message: Any) -> None:
            if message["type"] == "http.response.start":
                call.status = message["status"]
                response_headers = dict(message.get("headers", []))
                call.content_type = response_headers.get(b"content-type", b"")
                if header_id is not None:
                    message["headers"] = [*message.get("headers", []), (b"x-request-id", header_id.encode())]
            elif message["type"] == "http.response.body":
                chunk = message.get("body", b"")
                if call.content_type.startswith(b"text/event-stream"):
                    call.scan_sse(chunk)
                    if guard.audit_text != "off" and call.captured < _MAX_CAPTURE:
                        call.response_body.append(chunk)
                        call.captured += len(chunk)
                elif call.captured < _MAX_CAPTURE:
                    call.response_body.append(chunk)
                    call.captured += len(chunk)
            await send(message)

        try:
            await self.app(asgi_scope, receive_captured, send_captured)
        finally:
            if key is not None and key.tokens_per_minute:
                guard.limiter.charge_tokens(key, (call.prompt_tokens or 0) + (call.completion_tokens or 0))
            audit(call.status or 500, call)

    def _call_fields(self, call: _Call) -> dict[str, Any]:
        request_body = b"".join(call.request_body)
        response_body = b"".join(call.response_body)
        if not call.content_type.startswith(b"text/event-stream") and (probe := _peek(response_body)):
            call.take_usage(probe)
        estimated = None
        if call.content_type.startswith(b"text/event-stream") and call.completion_tokens is None:
            call.completion_tokens, estimated = call.events, True
        if call.model is None and (probe := _peek(request_body)) is not None:
            call.model = probe.model
        fields: dict[str, Any] = {
            "model": call.model,
            "device": self.guard.device_of(call.model) if call.model else None,
            "prompt_tokens": call.prompt_tokens,
            "completion_tokens": call.completion_tokens,
            "tokens_estimated": estimated,
        }
        if self.guard.audit_text == "sha256":
            fields["request_sha256"] = hashlib.sha256(request_body).hexdigest()
            fields["response_sha256"] = hashlib.sha256(response_body).hexdigest()
        elif self.guard.audit_text == "full":
            fields["request_text"] = request_body.decode("utf-8", "replace")
            fields["response_text"] = response_body.decode("utf-8", "replace")
        return fields
