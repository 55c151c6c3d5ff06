"""Stored responses of the Responses API, for GET /v1/responses/{id} and `previous_response_id`.

In memory, owned by the app's lifespan, bounded by count and by bytes: past `capacity` responses
or `max_bytes` of them (their JSON size: response, conversation and input items) the least recently
used are forgotten (a local server restarts often, and conversations are short-lived; a client that
needs durable history keeps it itself and sends the whole `input`). A response larger than the
whole budget is not kept.
"""

from __future__ import annotations

import logging
from collections import OrderedDict
from dataclasses import dataclass, field

import msgspec

from adapters.base import ChatMessage
from server.http.errors import APIError
from server.inference.responses.protocol import InputItem, Response

log = logging.getLogger(__name__)
_ENCODER = msgspec.json.Encoder()


@dataclass(frozen=True)
class StoredResponse:
    """A response and what a follow-up needs: the conversation up to and including its answer
    (without its instructions, which OpenAI does not carry over) and its own input items."""

    response: Response
    conversation: tuple[ChatMessage, ...]
    input_items: tuple[InputItem, ...]
    size: int = field(init=False, default=0)

    def __post_init__(self) -> None:
        # What it holds, measured once as JSON: near enough to its memory to budget by.
        size = len(_ENCODER.encode(self.response)) + len(_ENCODER.encode(self.input_items))
        size += sum(len(turn.content) + len(_ENCODER.encode(turn.tool_calls)) + 32 for turn in self.conversation)
        object.__setattr__(self, "size", size)


def response_not_found(response_id: str, param: str | None = None) -> APIError:
    """404 for a response id that is not stored here."""
    return APIError(404, f"Response with id '{response_id}' not found.", param=param, code="not_found")


class ResponseStore:
    """Response id -> `StoredResponse`, least recently used first."""

    def __init__(self, capacity: int, max_bytes: int = 64 * 1024 * 1024) -> None:
        self._capacity = capacity
        self._max_bytes = max_bytes
        self._bytes = 0
        self._items: OrderedDict[str, StoredResponse] = OrderedDict()

    @property
    def bytes(self) -> int:
        """The size of what is stored (as `StoredResponse.size` counts it)."""
        return self._bytes

    def put(self, stored: StoredResponse) -> None:
        """Keep `stored`, forgetting the least recently used responses while the store holds more
        than its count or its bytes allow; one larger than all the bytes allowed is not kept."""
        if stored.size > self._max_bytes:
            log.warning(
                "response %s is %d bytes, more than responses_store_max_bytes (%d): not stored",
                stored.response.id,
                stored.size,
                self._max_bytes,
            )
            return
        old = self._items.pop(stored.response.id, None)
        if old is not None:
            self._bytes -= old.size
        self._items[stored.response.id] = stored
        self._bytes += stored.size
        while len(self._items) > self._capacity or self._bytes > self._max_bytes:
            _, dropped = self._items.popitem(last=False)
            self._bytes -= dropped.size

    def get(self, response_id: str, param: str | None = None) -> StoredResponse:
        """The stored response, or a 404 naming `param` (the request field that referred to it)."""
        stored = self._items.get(response_id)
        if stored is None:
            raise response_not_found(response_id, param)
        self._items.move_to_end(response_id)
        return stored

    def delete(self, response_id: str) -> None:
        """Forget a response (404 if unknown)."""
        stored = self._items.pop(response_id, None)
        if stored is None:
            raise response_not_found(response_id)
        self._bytes -= stored.size

    def __len__(self) -> int:
        return len(self._items)
