"""The Ollama wing as one Litestar router under /api, with Ollama's error mapping."""

from __future__ import annotations

from litestar import Router
from litestar.di import Provide

from server.dialects.ollama import hub, routes
from server.dialects.ollama.errors import EXCEPTION_HANDLERS
from server.settings import OllamaSettings


def router(settings: OllamaSettings) -> Router:
    """Ollama's endpoints beside OpenAI's, on the same port and the same engine door."""

    def provide() -> OllamaSettings:
        return settings

    return Router(
        path="/api",
        route_handlers=[*routes.HANDLERS, *hub.HANDLERS],
        dependencies={"ollama": Provide(provide, sync_to_thread=False)},
        exception_handlers=EXCEPTION_HANDLERS,  # type: ignore[arg-type]
        tags=["ollama"],
        # Ollama's contract is its own docs/api.md (docs/ollama-compat.md maps it field by field);
        # Hearth's OpenAPI document describes Hearth's and OpenAI's API, which its fuzz tests check.
        include_in_schema=False,
    )
