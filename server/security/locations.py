"""Where the security state of a Hearth home lives: the key store and the audit log (for the server
and the CLI alike, without importing the web framework)."""

from __future__ import annotations

from pathlib import Path

from server.security.audit import AuditWriter
from server.settings import Settings


def keys_path(settings: Settings) -> Path:
    """Where the key store of `settings.server.home` lives."""
    return settings.home_path / "keys.json"


def audit_dir(settings: Settings) -> Path:
    """Where the audit log of `settings.server.home` lives."""
    return settings.home_path / "audit"


def audit_writer(settings: Settings) -> AuditWriter:
    """A writer on the audit chain of `settings.server.home` (for the server and the CLI alike)."""
    return AuditWriter(
        audit_dir(settings), fsync=settings.security.audit_fsync, max_bytes=settings.security.audit_max_bytes
    )
