"""GET /v1/tuning: the engine settings in effect and what `hearth bench` last measured.

The settings are the ones the server started with (what `hearth bench --apply` changes for the next
start); the report is `$HEARTH_HOME/bench/last.json` as `hearth bench` wrote it, or null.
"""

from __future__ import annotations

from typing import Any

import msgspec
from litestar import get

from server.settings import Settings


class Tuning(msgspec.Struct, kw_only=True):
    """The engine settings in effect and the last bench report."""

    engine: dict[str, Any]
    last_bench: dict[str, Any] | None


def tuning_route(settings: Settings) -> Any:
    """The route handler, bound to the server's settings."""

    @get(
        "/v1/tuning",
        summary="Engine settings in effect and the last `hearth bench` report",
        tags=["system"],
        sync_to_thread=True,
    )
    def tuning() -> Tuning:
        """What `hearth bench` tunes, as this server runs it, and what it measured last."""
        path = settings.home_path / "bench" / "last.json"
        try:
            report = msgspec.json.decode(path.read_bytes())
        except (OSError, msgspec.DecodeError):
            report = None
        return Tuning(engine=msgspec.to_builtins(settings.engine), last_bench=report)

    return tuning
