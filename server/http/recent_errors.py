"""The last requests that failed (a bounded ring), for the console's dashboard.

The observability middleware records every answer with a 4xx or 5xx status here: when, which
endpoint and model, the status, and the error's message read from the body in any dialect's shape
(OpenAI's and Anthropic's `{"error": {"message": ...}}`, Ollama's `{"error": "..."}`). What is kept
is what the client was told, cut short, and never the request itself: no prompt text and no key
(refusals say that a key is missing or invalid, not what was sent).
"""

from __future__ import annotations

import threading
from collections import deque

import msgspec

# Enough of an error body to find its message; the rest is not read.
BODY_PREFIX_BYTES = 4096
_MESSAGE_CHARS = 300
# Probes: /health answers 503 by design while a model loads or the server drains, and a probe every
# second would push every real error out of the ring.
_PROBES = frozenset({"/health"})


def is_recorded(path: str, status: int) -> bool:
    """Whether an answer with `status` to `path` is an error worth listing."""
    return status >= 400 and path not in _PROBES


class ErrorRecord(msgspec.Struct, frozen=True, kw_only=True):
    """One failed request."""

    time: float
    method: str
    path: str
    status: int
    # The model the request named, when the route saw one ("" otherwise).
    model: str
    message: str
    request_id: str


class RecentErrors:
    """The newest `size` failed requests, oldest dropped first; thread-safe."""

    def __init__(self, size: int) -> None:
        self._records: deque[ErrorRecord] = deque(maxlen=max(size, 0))
        self._lock = threading.Lock()

    def add(self, record: ErrorRecord) -> None:
        """Keep `record` (dropping the oldest when full)."""
        with self._lock:
            self._records.append(record)

    def newest_first(self) -> list[ErrorRecord]:
        """The records kept, newest first."""
        with self._lock:
            return list(reversed(self._records))


def error_message(body: bytes) -> str:
    """The message of an error body in any of the server's dialects, cut to a few hundred
    characters; "" for a body that is not one (it is never echoed raw)."""
    try:
        decoded = msgspec.json.decode(body)
    except msgspec.DecodeError:
        return ""
    error = decoded.get("error") if isinstance(decoded, dict) else None
    if isinstance(error, dict):
        error = error.get("message")
    if not isinstance(error, str):
        return ""
    return error if len(error) <= _MESSAGE_CHARS else error[: _MESSAGE_CHARS - 1] + "…"
