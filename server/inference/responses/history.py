"""Stored responses of the Responses API, for GET /v1/responses/{id} and `previous_response_id`.

In memory, owned by the app's lifespan, bounded: past `capacity` the least recently used response
is forgotten (a local server restarts often, and conversations are short-lived; a client that
needs durable history keeps it itself and sends the whole `input`).
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass

from adapters.base import ChatMessage
from server.http.errors import APIError
from server.inference.responses.protocol import InputItem, Response


@dataclass(frozen=True)
class StoredResponse:
    """A response and what a follow-up needs: the conversation up to and including its answer
    (without its instructions, which OpenAI does not carry over) and its own input items."""

    response: Response
    conversation: tuple[ChatMessage, ...]
    input_items: tuple[InputItem, ...]


def response_not_found(response_id: str, param: str | None = None) -> APIError:
    """404 for a response id that is not stored here."""
    return APIError(404, f"Response with id '{response_id}' not found.", param=param, code="not_found")


class ResponseStore:
    """Response id -> `StoredResponse`, least recently used first."""

    def __init__(self, capacity: int) -> None:
        self._capacity = capacity
        self._items: OrderedDict[str, StoredResponse] = OrderedDict()

    def put(self, stored: StoredResponse) -> None:
        """Keep `stored`, forgetting the least recently used response if the store is full."""
        self._items[stored.response.id] = stored
        self._items.move_to_end(stored.response.id)
        while len(self._items) > self._capacity:
            self._items.popitem(last=False)

    def get(self, response_id: str, param: str | None = None) -> StoredResponse:
        """The stored response, or a 404 naming `param` (the request field that referred to it)."""
        stored = self._items.get(response_id)
        if stored is None:
            raise response_not_found(response_id, param)
        self._items.move_to_end(response_id)
        return stored

    def delete(self, response_id: str) -> None:
        """Forget a response (404 if unknown)."""
        if self._items.pop(response_id, None) is None:
            raise response_not_found(response_id)

    def __len__(self) -> int:
        return len(self._items)
