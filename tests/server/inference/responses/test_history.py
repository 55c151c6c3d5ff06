"""Unit tests of the bounded in-memory store of the Responses API."""

from __future__ import annotations

import pytest

from adapters.base import ChatMessage
from server.http.errors import APIError
from server.inference.responses.history import ResponseStore, StoredResponse
from server.inference.responses.protocol import Response


def _stored(response_id: str) -> StoredResponse:
    response = Response(
        id=response_id,
        created_at=0,
        status="completed",
        model="m",
        output=[],
        instructions=None,
        previous_response_id=None,
        max_output_tokens=None,
        temperature=1.0,
        top_p=1.0,
        store=True,
        metadata={},
    )
    return StoredResponse(response, (ChatMessage("user", response_id),), ())


def test_least_recently_used_is_forgotten_first() -> None:
    """Past capacity the least recently used goes; reading a response makes it recent."""
    store = ResponseStore(capacity=2)
    store.put(_stored("a"))
    store.put(_stored("b"))
    assert store.get("a").conversation[0].content == "a"
    store.put(_stored("c"))
    assert len(store) == 2
    assert store.get("a").response.id == "a"
    with pytest.raises(APIError) as caught:
        store.get("b", param="previous_response_id")
    assert caught.value.status == 404
    assert caught.value.detail.param == "previous_response_id"


def test_delete() -> None:
    """A deleted response is gone; deleting it again is a 404."""
    store = ResponseStore(capacity=3)
    store.put(_stored("a"))
    store.delete("a")
    assert len(store) == 0
    with pytest.raises(APIError):
        store.delete("a")


def _sized(response_id: str, text_bytes: int) -> StoredResponse:
    stored = _stored(response_id)
    return StoredResponse(stored.response, (ChatMessage("user", "x" * text_bytes),), ())


def test_bounded_by_bytes_as_well_as_count() -> None:
    """Past `max_bytes` the least recently used go, whatever the count; one response larger than
    the whole budget is not kept (and evicts nothing)."""
    each = _sized("a", 3_000).size
    store = ResponseStore(capacity=100, max_bytes=3 * each + 10)
    for name in "abcdef":
        store.put(_sized(name, 3_000))
        assert store.bytes <= 3 * each + 10
    assert len(store) == 3
    assert [store.get(name).response.id for name in "def"] == ["d", "e", "f"]
    with pytest.raises(APIError):
        store.get("a")
    store.put(_sized("huge", 4 * each))
    assert len(store) == 3
    with pytest.raises(APIError):
        store.get("huge")
    store.delete("d")
    assert store.bytes == sum(store.get(name).size for name in "ef")
