"""What the app owns for security, built from settings: the key store, the middleware's guard, the
audit log (opened and closed by the app's lifespan), CORS, and the worker confinement policy."""

from __future__ import annotations

import signal
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any, Literal

from litestar.config.cors import CORSConfig
from litestar.middleware import DefineMiddleware

from adapters.sandbox import Confinement
from server.security.audit_log import AuditCollector, AuditLog
from server.security.auth import Authenticator, is_loopback
from server.security.keys import KeyStore
from server.security.locations import audit_writer, keys_path
from server.security.middleware import Guard, SecurityMiddleware
from server.settings import Settings


def bind_refusal(settings: Settings) -> str | None:
    """Why `hearth serve` must not start with these settings, or None: a non-loopback address
    with no API keys would hand the models to anyone on the network."""
    if is_loopback(settings.server.host) or settings.security.insecure:
        return None
    if KeyStore(keys_path(settings)).any_active():
        return None
    return (
        f"refusing to listen on {settings.server.host}: no API keys exist, so anyone who can reach this "
        "address could use the server. Create one with `hearth keys create --name NAME --scope "
        "inference` (clients then send it as a Bearer token), bind 127.0.0.1, or pass --insecure "
        "to serve without keys anyway."
    )


class Security:
    """The security parts of one app."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.store = KeyStore(keys_path(settings))
        self.guard = Guard(
            auth=Authenticator(
                self.store, insecure=settings.security.insecure, metrics_public=settings.security.metrics_public
            ),
            audit_text=settings.security.audit_text,
        )

    @asynccontextmanager
    async def lifespan(self, _app: Any) -> AsyncIterator[None]:
        """Open the audit log for the app's lifetime; everything queued is written at shutdown."""
        if self.settings.security.audit:
            self.guard.audit = AuditLog(
                audit_writer(self.settings),
                retry_s=self.settings.security.audit_retry_s,
                max_held=self.settings.security.audit_max_held,
            )
            self.guard.audit.record("server_start", host=self.settings.server.host, port=self.settings.server.port)
        try:
            yield
        finally:
            if self.guard.audit is not None:
                self.guard.audit.record("server_stop")
                self.guard.audit.close()
                self.guard.audit = None

    def audit_state(self) -> Literal["off", "ok", "failing"]:
        """Whether the audit log is off, written, or failing to be written (model calls refused)."""
        return "off" if self.guard.audit is None else self.guard.audit.state

    def audit_collector(self) -> AuditCollector:
        """The audit log's metrics (failing, held records, write errors)."""
        return AuditCollector(lambda: self.guard.audit)

    def audit(self, event: str, **fields: Any) -> None:
        """Record `event` in the audit log, if it is on."""
        if self.guard.audit is not None:
            self.guard.audit.record(event, **fields)

    def runner_exit(self, model: str, pid: int, status: int | None) -> None:
        """Record a model worker that stopped unasked (crash, kill, sandbox violation)."""
        if self.guard.audit is None:
            return
        sig = signal.Signals(-status).name if status is not None and status < 0 else None
        self.guard.audit.record(
            "runner_exit",
            model=model,
            pid=pid,
            exit_code=status if status is not None and status >= 0 else None,
            signal=sig,
            sandbox_violation=True if sig == "SIGSYS" else None,
        )

    def middleware(self) -> DefineMiddleware:
        """The middleware every route passes through."""
        return DefineMiddleware(SecurityMiddleware, guard=self.guard)

    def cors(self) -> CORSConfig | None:
        """CORS for the allowed origins, or None (off) when the allowlist is empty."""
        origins = [o.strip() for o in self.settings.security.cors_origins.split(",") if o.strip()]
        if not origins:
            return None
        return CORSConfig(
            allow_origins=origins,
            allow_methods=["GET", "POST", "PUT", "DELETE", "OPTIONS"],
            allow_headers=[
                "authorization",
                "content-type",
                "x-api-key",
                "x-request-id",
                "openai-organization",
                "anthropic-version",
                "anthropic-beta",
            ],
            expose_headers=["x-request-id", "retry-after"],
            allow_credentials=False,
            max_age=600,
        )

    def confinement(self) -> Confinement:
        """How model workers are confined."""
        return self.settings.worker_confinement()
