"""The limits a request's generation gets from the settings (issue 17): the default max_tokens cap,
stop strings (how many, how long) and tool calls per answer, through the official `openai` client.

One server of its own with small values, so that each limit is reached in a few tokens; and the
shared server for the defaults (16 stop strings accepted where OpenAI takes 4).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import openai
import pytest
from openai.types.chat import ChatCompletionToolParam

from tests.conftest import HearthServer, run_hearth

CAP = 8
CONTEXT = 256
MAX_STOPS = 6
MAX_STOP_LENGTH = 12
ASK = [{"role": "user", "content": "Tell me a long story about a dragon."}]
WEATHER: ChatCompletionToolParam = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
    },
}


@pytest.fixture(scope="module")
def limited(tmp_path_factory: pytest.TempPathFactory) -> Iterator[HearthServer]:
    """A server with a small context, default cap, stop limits and one tool call per answer."""
    limits = {
        "--context-length": CONTEXT,
        "--default-max-tokens": CAP,
        "--max-stop-sequences": MAX_STOPS,
        "--max-stop-length": MAX_STOP_LENGTH,
        "--max-tool-calls": 1,
    }
    args = [str(part) for flag, value in limits.items() for part in (flag, value)]
    home: Path = tmp_path_factory.mktemp("hearth-home-limits")
    with run_hearth(home, *args) as server:
        yield server


@pytest.fixture(scope="module")
def client(limited: HearthServer) -> Iterator[openai.OpenAI]:
    with limited.openai_client() as limited_client:
        yield limited_client


def test_a_request_without_max_tokens_stops_at_the_default_cap(client: openai.OpenAI, model_id: str) -> None:
    """No max_tokens: at most default_max_tokens tokens (finish_reason length), in chat,
    completions and responses; an explicit larger max_tokens is still honoured."""
    chat = client.chat.completions.create(model=model_id, messages=ASK, extra_body={"ignore_eos": True})  # type: ignore[arg-type]
    assert chat.usage is not None and chat.usage.completion_tokens == CAP
    assert chat.choices[0].finish_reason == "length"
    longer = client.chat.completions.create(
        model=model_id,
        messages=ASK,  # type: ignore[arg-type]
        max_tokens=CAP + 12,
        extra_body={"ignore_eos": True},
    )
    assert longer.usage is not None and longer.usage.completion_tokens == CAP + 12
    legacy = client.completions.create(
        model=model_id, prompt="Once upon a time", max_tokens=None, extra_body={"ignore_eos": True}
    )
    assert legacy.usage is not None and legacy.usage.completion_tokens == CAP
    response = client.responses.create(model=model_id, input="Tell me a long story.", extra_body={"ignore_eos": True})
    assert response.usage is not None and response.usage.output_tokens <= CAP
    assert response.status == "incomplete" or response.usage.output_tokens < CAP


def test_the_default_cap_is_cut_to_the_context_left(client: openai.OpenAI, model_id: str) -> None:
    """A prompt that leaves fewer tokens than the cap is answered up to the context, not refused;
    an explicit max_tokens past the context still is (context_length_exceeded)."""
    words, target = CONTEXT, CONTEXT - 3  # a prompt 3 tokens short of the context
    for _ in range(5):
        prompt = "word " * words
        count = client.post("/tokenize", body={"model": model_id, "content": prompt}, cast_to=dict[str, Any])["count"]
        if count == target:
            break
        words -= count - target
    legacy = client.completions.create(model=model_id, prompt=prompt, max_tokens=None, extra_body={"ignore_eos": True})
    assert legacy.usage is not None
    assert legacy.usage.prompt_tokens + legacy.usage.completion_tokens == CONTEXT
    assert 0 < legacy.usage.completion_tokens < CAP and legacy.choices[0].finish_reason == "length"
    with pytest.raises(openai.BadRequestError) as caught:
        client.completions.create(model=model_id, prompt=prompt, max_tokens=CAP)
    assert caught.value.response.json()["error"]["code"] == "context_length_exceeded"


def test_stop_limits_are_the_settings(client: openai.OpenAI, model_id: str) -> None:
    """max_stop_sequences strings are accepted, one more is a 400 naming the limit and its setting;
    a stop string longer than max_stop_length is a 400 naming it, in chat and completions."""
    stops = [f"zz{i}" for i in range(MAX_STOPS)]
    client.chat.completions.create(model=model_id, messages=ASK, stop=stops, max_tokens=2)  # type: ignore[arg-type]
    client.completions.create(model=model_id, prompt="Hi", stop=stops, max_tokens=2)
    for create in (
        lambda stop: client.chat.completions.create(model=model_id, messages=ASK, stop=stop, max_tokens=2),  # type: ignore[arg-type]
        lambda stop: client.completions.create(model=model_id, prompt="Hi", stop=stop, max_tokens=2),
    ):
        with pytest.raises(openai.BadRequestError) as caught:
            create([*stops, "one more"])
        error = caught.value.response.json()["error"]
        assert error["param"] == "stop"
        assert str(MAX_STOPS) in error["message"] and "max_stop_sequences" in error["message"]
        with pytest.raises(openai.BadRequestError) as caught:
            create(["ok", "x" * (MAX_STOP_LENGTH + 1)])
        error = caught.value.response.json()["error"]
        assert error["param"] == "stop[1]" and "max_stop_length" in error["message"]


def test_max_tool_calls_ends_the_turn(client: openai.OpenAI, model_id: str) -> None:
    """With max_tool_calls 1, tool_choice required and the default parallel_tool_calls give exactly
    one call, and generation stops right after it."""
    response = client.chat.completions.create(
        model=model_id,
        messages=[{"role": "user", "content": "What is the weather in Paris and in Rome?"}],
        tools=[WEATHER],
        tool_choice="required",
        temperature=0,
        max_tokens=70,
    )
    choice = response.choices[0]
    assert choice.finish_reason == "tool_calls" and len(choice.message.tool_calls or []) == 1
    assert response.usage is not None and response.usage.completion_tokens < 50


def test_sixteen_stop_strings_by_default_and_each_one_counts(openai_client: openai.OpenAI, model_id: str) -> None:
    """On the default server 16 stop strings are accepted (OpenAI takes 4; Continue sends more),
    the last of them still stops generation; 17 is a 400 naming the limit."""
    kwargs: dict[str, Any] = {"model": model_id, "prompt": "The capital of France is", "temperature": 0}
    free = openai_client.completions.create(**kwargs, max_tokens=12).choices[0].text
    word = free.split()[2]
    stops = [f"qq{i}" for i in range(15)] + [word]
    for order in (stops, stops[::-1]):
        stopped = openai_client.completions.create(**kwargs, max_tokens=12, stop=order).choices[0]
        assert stopped.finish_reason == "stop" and stopped.text == free[: free.index(word)]
    chat = openai_client.chat.completions.create(model=model_id, messages=ASK, stop=stops, max_tokens=4)  # type: ignore[arg-type]
    assert chat.choices[0].finish_reason in ("stop", "length")
    with pytest.raises(openai.BadRequestError) as caught:
        openai_client.chat.completions.create(model=model_id, messages=ASK, stop=[*stops, "x"], max_tokens=4)  # type: ignore[arg-type]
    assert "16" in caught.value.response.json()["error"]["message"]
