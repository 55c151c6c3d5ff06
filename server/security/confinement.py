"""How model workers are confined, from the settings alone: the server's security and the workers
`hearth serve` starts before the rest of the server exists (server/serving/early.py) must agree."""

from __future__ import annotations

from adapters.sandbox import Confinement
from server.settings import Settings


def worker_confinement(settings: Settings) -> Confinement:
    """The confinement every model worker of this server applies to itself (docs/security.md)."""
    return Confinement(
        enabled=settings.security.sandbox,
        filesystem=settings.security.sandbox_files,
        max_memory_bytes=int(settings.security.worker_max_memory_gb * 1024**3),
    )
