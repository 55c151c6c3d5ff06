"""The official `anthropic` SDK on the shared server, and a strict reader of Anthropic's SSE framing."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import anthropic
import pytest

from tests.conftest import CLIENT_TIMEOUT_S, HearthServer


def anthropic_client(server: HearthServer, api_key: str = "unused", **kwargs: Any) -> anthropic.Anthropic:
    """The official synchronous Anthropic client on `server` (base URL without `/v1`, no retries)."""
    return anthropic.Anthropic(
        base_url=server.base_url, api_key=api_key, max_retries=0, timeout=CLIENT_TIMEOUT_S, **kwargs
    )


@pytest.fixture(scope="session")
def claude(hearth_server: HearthServer) -> Iterator[anthropic.Anthropic]:
    """The Anthropic client on the shared server."""
    with anthropic_client(hearth_server) as client:
        yield client


def parse_events(raw: str) -> list[dict[str, Any]]:
    """The events of a raw Anthropic stream, asserting its framing: every event is `event: <type>`
    then `data: <json>` whose `type` is the same, each followed by a blank line."""
    assert raw.endswith("\n\n"), f"the stream does not end with a blank line: {raw[-200:]!r}"
    events: list[dict[str, Any]] = []
    for frame in raw.split("\n\n")[:-1]:
        lines = frame.split("\n")
        assert len(lines) == 2 and lines[0].startswith("event: ") and lines[1].startswith("data: "), frame[:300]
        data = json.loads(lines[1].removeprefix("data: "))
        assert data["type"] == lines[0].removeprefix("event: ")
        events.append(data)
    return events
