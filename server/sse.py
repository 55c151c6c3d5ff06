"""Server-sent events framing: `data: <json>` lines, an error event, and the closing `[DONE]`."""

from __future__ import annotations

import msgspec

from server.errors import APIError, ErrorResponse

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
