"""Errors of the Anthropic dialect: Anthropic's shape and statuses, raised by the official SDK as its
typed exceptions; x-api-key and Bearer keys on a server with keys."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import anthropic
import httpx
import pytest
from anthropic.types import MessageParam

from server.security.keys import KeyStore
from tests.conftest import CLIENT_TIMEOUT_S, DEFAULT_MODEL, HearthServer, run_hearth
from tests.server.dialects.anthropic.conftest import anthropic_client

HI: list[MessageParam] = [{"role": "user", "content": "Hi"}]


def _post(client: anthropic.Anthropic, body: dict[str, Any], path: str = "/v1/messages") -> None:
    """POST a raw body through the SDK (for what its typed methods will not send)."""
    client.post(path, body=body, cast_to=anthropic.types.Message)


def _error(exc: anthropic.APIStatusError) -> dict[str, Any]:
    assert isinstance(exc.body, dict) and exc.body["type"] == "error", exc.body
    error: dict[str, Any] = exc.body["error"]
    assert set(error) == {"type", "message"} and error["message"]
    return error


def test_unknown_model_is_not_found(claude: anthropic.Anthropic) -> None:
    with pytest.raises(anthropic.NotFoundError) as caught:
        claude.messages.create(model="no-such-model", max_tokens=4, messages=HI)
    assert _error(caught.value)["type"] == "not_found_error"
    with pytest.raises(anthropic.NotFoundError):
        claude.messages.count_tokens(model="no-such-model", messages=HI)


def test_missing_max_tokens_is_400(claude: anthropic.Anthropic) -> None:
    with pytest.raises(anthropic.BadRequestError) as caught:
        _post(claude, {"model": DEFAULT_MODEL, "messages": HI})
    error = _error(caught.value)
    assert error["type"] == "invalid_request_error" and "max_tokens" in error["message"]


@pytest.mark.parametrize(
    ("body", "named"),
    [
        ({"messages": []}, "messages"),
        ({"max_tokens": 0}, "max_tokens"),
        ({"temperature": 1.5}, "temperature"),
        ({"top_k": -1}, "top_k"),
        ({"messages": [{"role": "tool", "content": "x"}]}, "role"),
        ({"messages": [{"role": "system", "content": [{"type": "tool_result", "tool_use_id": "t"}]}]}, "system"),
        (
            {"messages": [{"role": "user", "content": [{"type": "image", "source": {"type": "url", "url": "x"}}]}]},
            "image",
        ),
        ({"tools": [{"type": "web_search_20250305", "name": "web_search"}]}, "web_search_20250305"),
        ({"tools": [{"name": "f"}]}, "input_schema"),
        ({"tool_choice": {"type": "tool", "name": "absent"}}, "tool_choice"),
        ({"tool_choice": {"type": "any"}}, "tool_choice"),
        ({"thinking": {"type": "enabled", "budget_tokens": 2048}}, "budget_tokens"),
        ({"max_tokens": 10_000_000}, "context"),
        ({"output_config": {"format": {"type": "json_schema", "schema": {"not": {}}}}}, "output_config.format"),
        (
            {
                "output_config": {"format": {"type": "json_schema", "schema": {}}},
                "tools": [{"name": "f", "input_schema": {}}],
            },
            "output_config.format",
        ),
    ],
)
def test_bad_requests_are_400_invalid_request_error(
    claude: anthropic.Anthropic, body: dict[str, Any], named: str
) -> None:
    with pytest.raises(anthropic.BadRequestError) as caught:
        _post(claude, {"model": DEFAULT_MODEL, "max_tokens": 8, "messages": HI, **body})
    error = _error(caught.value)
    assert error["type"] == "invalid_request_error" and named in error["message"]


@pytest.fixture(scope="module")
def keyed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[HearthServer, str]]:
    """A server whose home holds an inference key (so every request needs one)."""
    home = tmp_path_factory.mktemp("hearth-anthropic-keyed")
    key, _ = KeyStore(home / "keys.json").create("claude-client", "inference")
    time.sleep(0.01)
    with run_hearth(home, "--context-length", "256") as server:
        yield server, key


def test_keys_by_x_api_key_and_bearer(keyed: tuple[HearthServer, str]) -> None:
    server, key = keyed
    with (
        anthropic_client(server, api_key="hearth-wrong-key-0000") as client,
        pytest.raises(anthropic.AuthenticationError) as caught,
    ):
        client.messages.count_tokens(model=DEFAULT_MODEL, messages=HI)
    assert _error(caught.value)["type"] == "authentication_error"
    with anthropic_client(server, api_key=key) as client:  # sent as x-api-key
        assert client.messages.count_tokens(model=DEFAULT_MODEL, messages=HI).input_tokens > 0
        message = client.messages.create(model=DEFAULT_MODEL, max_tokens=2, messages=HI)
        assert message.usage.output_tokens > 0
    bearer = anthropic.Anthropic(base_url=server.base_url, auth_token=key, max_retries=0, timeout=CLIENT_TIMEOUT_S)
    with bearer:
        assert bearer.messages.count_tokens(model=DEFAULT_MODEL, messages=HI).input_tokens > 0


def test_no_key_is_401_in_anthropic_shape(keyed: tuple[HearthServer, str]) -> None:
    server, _ = keyed
    response = httpx.post(
        f"{server.base_url}/v1/messages",
        json={"model": DEFAULT_MODEL, "max_tokens": 2, "messages": HI},
        headers={"anthropic-version": "2023-06-01"},
        timeout=CLIENT_TIMEOUT_S,
    )
    assert response.status_code == 401
    body = response.json()
    assert body["type"] == "error" and body["error"]["type"] == "authentication_error"
