"""The lines `hearth serve` prints once it answers: where the API, the console and the docs are,
and which models it serves, so that nobody has to read the log to find them."""

from __future__ import annotations

import socket
import sys
from collections.abc import Callable
from typing import TYPE_CHECKING

import uvicorn

from server.http.drain import Drain, DrainingServer

if TYPE_CHECKING:
    from litestar import Litestar

    from server.settings import Settings


def banner(version: str, base_url: str, models: list[tuple[str, str]]) -> str:
    """The ready banner: the addresses under `base_url` and each model with its state."""
    served = ", ".join(f"{name} ({state})" for name, state in models) or "none (install one: hearth pull MODEL)"
    first = next((name for name, _ in models), "MODEL")
    return "\n".join(
        [
            f"Hearth {version} is ready",
            f"  API      {base_url}/v1  (OpenAI-compatible)",
            f"  console  {base_url}/",
            f"  docs     {base_url}/docs",
            f"  models   {served}",
            f"  try      hearth run {first}",
        ]
    )


def base_url(settings: Settings, sockets: list[socket.socket]) -> str:
    """The URL clients on this machine use: the bound port (it may have been 0), and loopback for
    a server bound to every address."""
    port = settings.server.port
    for sock in sockets:
        port = sock.getsockname()[1]
        break
    host = settings.server.host
    host = "127.0.0.1" if host in ("0.0.0.0", "::", "") else host
    if ":" in host:
        host = f"[{host}]"
    return f"{'https' if settings.security.tls else 'http'}://{host}:{port}"


def served_models(app: Litestar) -> list[tuple[str, str]]:
    """Each model the app's scheduler serves, with its state (loaded, unloaded, ...)."""
    status = app.state.scheduler.status()
    return [(m.id, m.state) for m in status.models]


class ReadyServer(DrainingServer):
    """The app's draining uvicorn server, calling `on_ready(sockets)` once it is listening."""

    def __init__(self, config: uvicorn.Config, drain: Drain, on_ready: Callable[[list[socket.socket]], None]) -> None:
        super().__init__(config, drain)
        self._on_ready = on_ready

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        """Start as uvicorn does, then announce."""
        await super().startup(sockets)
        if self.started:
            listening = [s for server in self.servers for s in (server.sockets or [])]
            self._on_ready(listening)


def announce(settings: Settings, app: Litestar, version: str) -> Callable[[list[socket.socket]], None]:
    """The `on_ready` of `hearth serve`: print the banner to stderr."""

    def on_ready(sockets: list[socket.socket]) -> None:
        print(banner(version, base_url(settings, sockets), served_models(app)), file=sys.stderr, flush=True)

    return on_ready
