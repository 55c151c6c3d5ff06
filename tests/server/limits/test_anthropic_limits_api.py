"""The limits hold on the Anthropic dialect too, answered in Anthropic's error shape: nesting
before decoding, integers past the engine's range, too many tools, schemas the grammar engine
would fail on; and the model's one slot is still free afterwards."""

from __future__ import annotations

from typing import Any

import anthropic
import httpx
import pytest

from tests.conftest import DEFAULT_MODEL, HearthServer
from tests.server.limits.conftest import HealthProbe, normal_chat, runner_pid

MANY = {"type": "string", "enum": [str(i) for i in range(1001)]}
BODY: dict[str, Any] = {"model": DEFAULT_MODEL, "max_tokens": 4, "messages": [{"role": "user", "content": "Hi"}]}


def _refused(response: httpx.Response) -> dict[str, Any]:
    assert response.status_code == 400, response.text[:400]
    answer: dict[str, Any] = response.json()
    assert answer["type"] == "error" and answer["error"]["type"] == "invalid_request_error", answer
    error: dict[str, Any] = answer["error"]
    return error


@pytest.mark.parametrize(
    ("body", "mentions"),
    [
        ({**BODY, "max_tokens": 2**64}, "max_tokens"),
        ({**BODY, "top_k": 2**63}, "top_k"),
        ({**BODY, "thinking": {"type": "enabled", "budget_tokens": 2**70}}, "budget_tokens"),
        ({**BODY, "messages": [{"role": "user", "content": "Hi"}] * 2049}, "max_messages"),
        (
            {**BODY, "output_config": {"format": {"type": "json_schema", "schema": {"type": "string", "enum": []}}}},
            "enum",
        ),
        (
            {
                **BODY,
                "output_config": {
                    "format": {
                        "type": "json_schema",
                        "schema": {"type": "string", "enum": [str(i) for i in range(1001)]},
                    }
                },
            },
            "max_enum_values",
        ),
    ],
)
def test_refusals_in_anthropics_shape(
    raw: httpx.Client, health: HealthProbe, body: dict[str, Any], mentions: str
) -> None:
    error = _refused(raw.post("/v1/messages", json=body, timeout=30))
    assert mentions in error["message"], error


def test_nested_json_is_refused_before_decoding(raw: httpx.Client, health: HealthProbe) -> None:
    body = b'{"model": "m", "max_tokens": 1, "messages": ' + b"[" * 100_000 + b"]" * 100_000 + b"}"
    for path in ("/v1/messages", "/v1/messages/count_tokens"):
        assert (
            "max_json_depth"
            in _refused(raw.post(path, content=body, headers={"content-type": "application/json"}))["message"]
        )


def test_the_sdk_reads_the_refusal_and_the_slot_is_free(limited: HearthServer, raw: httpx.Client) -> None:
    pid = runner_pid(raw)
    tools: Any = [{"name": f"t{i}", "input_schema": {"type": "object"}} for i in range(129)]
    with anthropic.Anthropic(base_url=limited.base_url, api_key="unused", max_retries=0) as client:
        with pytest.raises(anthropic.BadRequestError) as raised:
            client.messages.create(
                model=DEFAULT_MODEL, max_tokens=4, messages=[{"role": "user", "content": "Hi"}], tools=tools
            )
        assert "max_tools" in str(raised.value)
        answer = client.messages.create(model=DEFAULT_MODEL, max_tokens=3, messages=[{"role": "user", "content": "Hi"}])
        assert answer.stop_reason in ("end_turn", "max_tokens")
    assert runner_pid(raw) == pid
    normal_chat(raw)
