"""What the CLI's client commands (`hearth run`, `ps`, `stop`, `workflow`) send to a running server.

Where the server is: `--url`, then `HEARTH_URL`, then `HEARTH_HOST` when it is a URL (as Ollama's
`OLLAMA_HOST`), then the host and port of the settings (`HEARTH_HOST`, `HEARTH_PORT`, the config
file). The API key is `HEARTH_API_KEY`.
"""

from __future__ import annotations

import argparse
import os
from typing import TYPE_CHECKING, Any

import httpx

from server.commands.common import local_url

if TYPE_CHECKING:
    from server.settings import Settings


class ServerError(Exception):
    """The server answered with an error, or did not answer; the message says which."""

    def __init__(self, message: str, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status


def auth_headers() -> dict[str, str]:
    """`Authorization: Bearer $HEARTH_API_KEY` once the server requires keys (none when unset)."""
    key = os.environ.get("HEARTH_API_KEY", "").strip()
    return {"Authorization": f"Bearer {key}"} if key else {}


def add_url_flag(parser: argparse.ArgumentParser) -> None:
    """`--url`: the server a client command talks to."""
    parser.add_argument("--url", help="server base URL (default $HEARTH_URL, $HEARTH_HOST or the configured host:port)")


def explicit_url(url: str | None) -> str | None:
    """The server's URL when the user named one (flag or environment); None for the configured default."""
    host = os.environ.get("HEARTH_HOST", "")
    named = url or os.environ.get("HEARTH_URL") or (host if "://" in host else None)
    return named.rstrip("/") if named else None


def server_url(settings: Settings, url: str | None) -> str:
    """The base URL (no `/v1`) of the server a client command talks to."""
    named = explicit_url(url)
    if named:
        return named
    base = local_url(settings)
    return base.replace("http://", "https://", 1) if settings.security.tls else base


def error_message(response: httpx.Response) -> str:
    """The message of an error answer: OpenAI's `{"error": {"message"}}`, or its text."""
    try:
        body = response.json()
    except ValueError:
        return f"{response.status_code} {response.text[:300]}"
    error = body.get("error") if isinstance(body, dict) else None
    if isinstance(error, dict) and error.get("message"):
        return str(error["message"])
    detail = body.get("detail") if isinstance(body, dict) else None
    return str(detail or error or body)


def answers(url: str, timeout: float = 2.0) -> bool:
    """Whether a Hearth server answers at `url` (any HTTP answer from /health counts)."""
    try:
        httpx.get(f"{url}/health", timeout=timeout)
    except httpx.HTTPError:
        return False
    return True


def ready(url: str, timeout: float = 2.0) -> bool:
    """Whether the Hearth server at `url` is ready (GET /health is 200: its models are loaded, not
    still `loading` while it binds)."""
    try:
        return httpx.get(f"{url}/health", timeout=timeout).status_code == 200
    except httpx.HTTPError:
        return False


def call(method: str, url: str, path: str, body: Any = None, timeout: float = 30.0) -> Any:
    """One JSON request; its decoded answer, or `ServerError` with the server's message."""
    try:
        response = httpx.request(method, f"{url}{path}", json=body, headers=auth_headers(), timeout=timeout)
    except httpx.HTTPError as exc:
        raise ServerError(f"no server answers at {url}: {exc}") from None
    if response.status_code >= 400:
        raise ServerError(error_message(response), response.status_code)
    return response.json()
