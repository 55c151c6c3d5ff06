"""Server-sent events framing: `data: <json>` lines, an error event, and the closing `[DONE]`."""

from __future__ import annotations

from typing import Any

import msgspec
from litestar.response import Stream
from litestar.response.base import ASGIResponse

from server.http.errors import APIError, ErrorResponse

DONE = b"data: [DONE]\n\n"
HEADERS = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}
MEDIA_TYPE = "text/event-stream"


class EventEncoder:
    """Encodes Structs as SSE data events, reusing one buffer-friendly msgspec encoder."""

    def __init__(self) -> None:
        self._encoder = msgspec.json.Encoder()

    def event(self, obj: object) -> bytes:
        """One `data:` event."""
        return b"data: " + self._encoder.encode(obj) + b"\n\n"

    def error(self, error: APIError) -> bytes:
        """An error in the middle of a stream, in OpenAI's error shape."""
        return self.event(ErrorResponse(error.detail))


class EventStream(Stream):
    """A `text/event-stream` response. Litestar's `Stream` lets the handler's inferred media type
    (JSON, from the route's return annotation) win over its own; this one always sends SSE."""

    def __init__(self, iterator: Any) -> None:
        super().__init__(iterator, media_type=MEDIA_TYPE, headers=HEADERS)

    def to_asgi_response(self, *args: Any, **kwargs: Any) -> ASGIResponse:
        kwargs["media_type"] = MEDIA_TYPE
        return super().to_asgi_response(*args, **kwargs)
