"""End-to-end tests of POST /v1/chat/completions through the official `openai` client.

Every response body (and every stream chunk) is validated against OpenAI's own OpenAPI schema.
Generations are kept short (8-32 tokens): the model runs on CPU.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections import defaultdict
from typing import Any

import httpx
import openai
import pytest
from openai.types.chat import ChatCompletionMessageParam

from tests.conftest import HearthServer, parse_sse
from tests.openai_schema import validate
from tests.server.inference.wire import check_answer

PROMPT: list[ChatCompletionMessageParam] = [
    {"role": "user", "content": "Write a short story about a cat who learns to fly."}
]


def chat(client: openai.OpenAI, model: str, **kwargs: Any) -> dict[str, Any]:
    """A non-streamed chat completion, schema-checked, as the wire dict."""
    kwargs.setdefault("messages", PROMPT)
    response = client.chat.completions.create(model=model, **kwargs)
    body: dict[str, Any] = response.to_dict()
    usage = check_answer(body, "CreateChatCompletionResponse", "chat.completion", model, "chatcmpl-")
    assert usage["prompt_tokens"] > 0
    for choice in body["choices"]:
        assert choice["message"]["role"] == "assistant"
        assert isinstance(choice["message"]["content"], str)
        assert choice["finish_reason"] in ("stop", "length")
    return body


def stream_chat(client: openai.OpenAI, model: str, **kwargs: Any) -> list[dict[str, Any]]:
    """A streamed chat completion's chunks, each schema-checked, as wire dicts."""
    kwargs.setdefault("messages", PROMPT)
    chunks: list[dict[str, Any]] = []
    with client.chat.completions.create(model=model, stream=True, **kwargs) as stream:
        for chunk in stream:
            data: dict[str, Any] = chunk.to_dict()
            validate("CreateChatCompletionStreamResponse", data)
            chunks.append(data)
    return chunks


def check_stream(chunks: list[dict[str, Any]], n: int = 1, include_usage: bool = False) -> dict[int, dict[str, Any]]:
    """Assert OpenAI's stream invariants; return per choice index its text and finish_reason."""
    assert chunks, "empty stream"
    assert len({c["id"] for c in chunks}) == 1, "all chunks share one id"
    assert len({c["created"] for c in chunks}) == 1
    assert all(c["object"] == "chat.completion.chunk" for c in chunks)
    body = chunks
    if include_usage:
        *body, last = chunks
        assert last["choices"] == [], "the usage chunk has no choices"
        assert last["usage"] is not None
        for c in body:
            assert "usage" in c and c["usage"] is None, "chunks before the usage chunk carry usage: null"
    else:
        assert all(c.get("usage") is None for c in chunks)
    per_choice: dict[int, list[dict[str, Any]]] = defaultdict(list)
    for c in body:
        assert len(c["choices"]) == 1, "one choice per chunk"
        per_choice[c["choices"][0]["index"]].append(c["choices"][0])
    assert sorted(per_choice) == list(range(n))
    result: dict[int, dict[str, Any]] = {}
    for index, parts in per_choice.items():
        assert parts[0]["delta"].get("role") == "assistant", f"choice {index}: role in the first delta"
        assert all("role" not in p["delta"] for p in parts[1:]), f"choice {index}: role only once"
        assert parts[-1]["finish_reason"] in ("stop", "length"), f"choice {index}: finish_reason in its last chunk"
        assert all(p["finish_reason"] is None for p in parts[:-1]), f"choice {index}: finish_reason only at the end"
        text = "".join(p["delta"].get("content") or "" for p in parts)
        result[index] = {"text": text, "finish_reason": parts[-1]["finish_reason"]}
    return result


def test_chat_non_streaming(openai_client: openai.OpenAI, model_id: str) -> None:
    """A plain request answers one assistant message with consistent usage."""
    body = chat(openai_client, model_id, max_tokens=16)
    assert len(body["choices"]) == 1
    choice = body["choices"][0]
    assert choice["index"] == 0
    assert choice["message"]["content"].strip()
    assert body["usage"]["completion_tokens"] <= 16


def test_chat_streaming_invariants_and_usage(openai_client: openai.OpenAI, model_id: str) -> None:
    """Role first, finish_reason last, usage chunk last with the same totals as the whole answer."""
    params: dict[str, Any] = {"max_tokens": 16, "temperature": 0}
    whole = chat(openai_client, model_id, **params)
    chunks = stream_chat(openai_client, model_id, stream_options={"include_usage": True}, **params)
    (choice,) = check_stream(chunks, include_usage=True).values()
    usage = chunks[-1]["usage"]
    assert usage == {
        "prompt_tokens": whole["usage"]["prompt_tokens"],
        "completion_tokens": whole["usage"]["completion_tokens"],
        "total_tokens": whole["usage"]["total_tokens"],
    }
    assert choice["text"] == whole["choices"][0]["message"]["content"]
    assert choice["finish_reason"] == whole["choices"][0]["finish_reason"]


def test_chat_streaming_without_usage(openai_client: openai.OpenAI, model_id: str) -> None:
    """Without include_usage no chunk carries usage."""
    chunks = stream_chat(openai_client, model_id, max_tokens=8)
    check_stream(chunks)
    assert all("usage" not in c or c["usage"] is None for c in chunks)


def test_chat_raw_sse_framing(http: httpx.Client, model_id: str) -> None:
    """`data: <json>` events separated by blank lines, and `data: [DONE]` as the very last line."""
    body = {
        "model": model_id,
        "messages": PROMPT,
        "max_tokens": 8,
        "stream": True,
        "stream_options": {"include_usage": True},
    }
    with http.stream("POST", "/v1/chat/completions", json=body) as response:
        assert response.status_code == 200
        content_type = response.headers.get("content-type", "")
        raw = response.read().decode()
    chunks = parse_sse(raw)
    for chunk in chunks:
        validate("CreateChatCompletionStreamResponse", chunk)
    check_stream(chunks, include_usage=True)
    assert content_type.startswith("text/event-stream"), f"SSE served as {content_type!r}"


@pytest.mark.parametrize("n", [1, 2])
def test_chat_temperature_zero_stream_equals_non_stream(openai_client: openai.OpenAI, model_id: str, n: int) -> None:
    """Greedy decoding gives the same text streamed and whole (and the same for every choice)."""
    params: dict[str, Any] = {"max_tokens": 24, "temperature": 0, "n": n}
    whole = chat(openai_client, model_id, **params)
    streamed = check_stream(stream_chat(openai_client, model_id, **params), n=n)
    for choice in whole["choices"]:
        assert streamed[choice["index"]]["text"] == choice["message"]["content"]
        assert streamed[choice["index"]]["finish_reason"] == choice["finish_reason"]
    assert len({c["message"]["content"] for c in whole["choices"]}) == 1


def test_chat_max_tokens(openai_client: openai.OpenAI, model_id: str) -> None:
    """max_tokens caps the answer: finish_reason length, exactly that many tokens with ignore_eos."""
    body = chat(openai_client, model_id, max_tokens=8, extra_body={"ignore_eos": True})
    assert body["choices"][0]["finish_reason"] == "length"
    assert body["usage"]["completion_tokens"] == 8


def test_chat_max_completion_tokens(openai_client: openai.OpenAI, model_id: str) -> None:
    """max_completion_tokens (the newer name) is honoured the same way, streamed too."""
    body = chat(openai_client, model_id, max_completion_tokens=6, extra_body={"ignore_eos": True})
    assert body["choices"][0]["finish_reason"] == "length"
    assert body["usage"]["completion_tokens"] == 6
    chunks = stream_chat(
        openai_client,
        model_id,
        max_completion_tokens=6,
        stream_options={"include_usage": True},
        extra_body={"ignore_eos": True},
    )
    (choice,) = check_stream(chunks, include_usage=True).values()
    assert choice["finish_reason"] == "length"
    assert chunks[-1]["usage"]["completion_tokens"] == 6


def test_chat_ignore_eos(openai_client: openai.OpenAI, model_id: str) -> None:
    """`ignore_eos` (extra_body) keeps generating past end-of-sequence up to max_tokens."""
    messages = [{"role": "user", "content": "Say OK."}]
    body = chat(
        openai_client, model_id, messages=messages, max_tokens=24, temperature=0, extra_body={"ignore_eos": True}
    )
    assert body["usage"]["completion_tokens"] == 24
    assert body["choices"][0]["finish_reason"] == "length"


def _stop_word(text: str) -> str:
    """A word from the middle of `text`, with its leading space, to use as a stop sequence."""
    words = text.split(" ")
    assert len(words) >= 5, f"reference answer too short to pick a stop word: {text!r}"
    return " " + words[3]


@pytest.mark.parametrize("as_list", [False, True])
def test_chat_stop(openai_client: openai.OpenAI, model_id: str, as_list: bool) -> None:
    """A stop string (alone or in a list) cuts the answer before it: finish_reason stop, stream agrees."""
    params: dict[str, Any] = {"max_tokens": 32, "temperature": 0}
    reference = chat(openai_client, model_id, **params)["choices"][0]["message"]["content"]
    stop_word = _stop_word(reference)
    stop: str | list[str] = ["\u2603never\u2603", stop_word] if as_list else stop_word
    expected = reference[: reference.index(stop_word)]
    body = chat(openai_client, model_id, stop=stop, **params)
    content = body["choices"][0]["message"]["content"]
    assert stop_word not in content
    assert content == expected
    assert body["choices"][0]["finish_reason"] == "stop"
    (streamed,) = check_stream(stream_chat(openai_client, model_id, stop=stop, **params)).values()
    assert streamed == {"text": content, "finish_reason": "stop"}


def test_chat_seed_reproducible(openai_client: openai.OpenAI, model_id: str) -> None:
    """The same seed at temperature 1 gives the same answer, whole and streamed."""
    params: dict[str, Any] = {"max_tokens": 16, "temperature": 1.0, "seed": 1234}
    first = chat(openai_client, model_id, **params)["choices"][0]["message"]["content"]
    second = chat(openai_client, model_id, **params)["choices"][0]["message"]["content"]
    assert first == second
    (streamed,) = check_stream(stream_chat(openai_client, model_id, **params)).values()
    assert streamed["text"] == first


def test_chat_n_choices(openai_client: openai.OpenAI, model_id: str) -> None:
    """n=2 answers two choices with indices 0 and 1, whole and streamed."""
    params: dict[str, Any] = {"max_tokens": 8, "temperature": 1.0, "seed": 7, "n": 2}
    body = chat(openai_client, model_id, **params)
    assert [c["index"] for c in body["choices"]] == [0, 1]
    chunks = stream_chat(openai_client, model_id, stream_options={"include_usage": True}, **params)
    streamed = check_stream(chunks, n=2, include_usage=True)
    assert sorted(streamed) == [0, 1]
    assert chunks[-1]["usage"]["completion_tokens"] == body["usage"]["completion_tokens"]
    assert {i: s["text"] for i, s in streamed.items()} == {c["index"]: c["message"]["content"] for c in body["choices"]}


def test_chat_content_parts(openai_client: openai.OpenAI, model_id: str) -> None:
    """A user message may be a list of text parts."""
    messages = [
        {
            "role": "user",
            "content": [{"type": "text", "text": "Name a colour."}, {"type": "text", "text": "Answer in one word."}],
        }
    ]
    body = chat(openai_client, model_id, messages=messages, max_tokens=8)
    assert body["choices"][0]["message"]["content"] is not None


def test_chat_history_roles(openai_client: openai.OpenAI, model_id: str) -> None:
    """system, user and assistant turns are all rendered into the prompt."""
    history = [
        {"role": "system", "content": "You are a terse assistant."},
        {"role": "user", "content": "What is 2 + 2?"},
        {"role": "assistant", "content": "4."},
        {"role": "user", "content": "And 3 + 3?"},
    ]
    full = chat(openai_client, model_id, messages=history, max_tokens=8)
    last_only = chat(openai_client, model_id, messages=history[-1:], max_tokens=8)
    assert full["usage"]["prompt_tokens"] > last_only["usage"]["prompt_tokens"]


def test_chat_developer_role(openai_client: openai.OpenAI, model_id: str) -> None:
    """The developer role is accepted and treated as OpenAI's newer name for system."""
    user = {"role": "user", "content": "Hi"}
    developer = chat(
        openai_client, model_id, messages=[{"role": "developer", "content": "Be brief."}, user], max_tokens=8
    )
    system = chat(openai_client, model_id, messages=[{"role": "system", "content": "Be brief."}, user], max_tokens=8)
    assert developer["usage"]["prompt_tokens"] == system["usage"]["prompt_tokens"]


def test_chat_penalties_accepted(openai_client: openai.OpenAI, model_id: str) -> None:
    """presence_penalty, frequency_penalty and top_p are accepted."""
    body = chat(openai_client, model_id, max_tokens=8, presence_penalty=0.5, frequency_penalty=1.0, top_p=0.9)
    assert body["choices"][0]["finish_reason"] in ("stop", "length")


def _bad_request(error: openai.BadRequestError) -> dict[str, Any]:
    body: dict[str, Any] = error.response.json()
    validate("ErrorResponse", body)
    assert body["error"]["type"] == "invalid_request_error"
    error_body: dict[str, Any] = body["error"]
    return error_body


@pytest.mark.parametrize(
    ("kwargs", "param"),
    [
        ({"logprobs": True, "top_logprobs": 2}, "top_logprobs"),
        ({"logprobs": True, "response_format": {"type": "json_object"}}, "logprobs"),
        ({"tool_choice": "required"}, "tool_choice"),
        (
            {
                "response_format": {
                    "type": "json_schema",
                    "json_schema": {"name": "x", "schema": {"type": "object", "not": {"required": ["a"]}}},
                }
            },
            "response_format.json_schema.schema",
        ),
    ],
    ids=["top_logprobs", "logprobs-with-grammar", "tool_choice-without-tools", "unsupported-schema-keyword"],
)
def test_chat_unsupported_features_refused(
    openai_client: openai.OpenAI, model_id: str, kwargs: dict[str, Any], param: str
) -> None:
    """Features this server does not implement are refused with 400 naming the parameter."""
    with pytest.raises(openai.BadRequestError) as caught:
        openai_client.chat.completions.create(model=model_id, messages=PROMPT, max_tokens=4, **kwargs)
    assert _bad_request(caught.value)["param"] == param


@pytest.mark.parametrize("stream", [False, True])
def test_chat_image_part_refused(openai_client: openai.OpenAI, model_id: str, stream: bool) -> None:
    """An image content part is refused with 400 (text-only model), before any stream starts."""
    messages: list[ChatCompletionMessageParam] = [
        {
            "role": "user",
            "content": [
                {"type": "text", "text": "What is this?"},
                {"type": "image_url", "image_url": {"url": "data:image/png;base64,iVBORw0KGgo="}},
            ],
        }
    ]
    with pytest.raises(openai.BadRequestError) as caught:
        openai_client.chat.completions.create(model=model_id, messages=messages, max_tokens=4, stream=stream)
    error = _bad_request(caught.value)
    assert error["param"] is not None and error["param"].startswith("messages[0].content")


def test_chat_concurrent_streams(
    async_openai_client: openai.AsyncOpenAI, openai_client: openai.OpenAI, model_id: str
) -> None:
    """8 concurrent streams all finish correctly, in clearly less time than 8 requests one by one."""
    count, max_tokens = 8, 16
    prompts: list[list[ChatCompletionMessageParam]] = [
        [{"role": "user", "content": f"Count from {i} to {i + 20}."}] for i in range(count)
    ]
    params: dict[str, Any] = {"max_tokens": max_tokens, "temperature": 0, "extra_body": {"ignore_eos": True}}

    sequential = 0.0
    expected: list[str] = []
    for messages in prompts:
        started = time.monotonic()
        body = chat(openai_client, model_id, messages=messages, **params)
        sequential += time.monotonic() - started
        expected.append(body["choices"][0]["message"]["content"])

    async def one(messages: list[ChatCompletionMessageParam]) -> dict[int, dict[str, Any]]:
        chunks: list[dict[str, Any]] = []
        stream = await async_openai_client.chat.completions.create(
            model=model_id, messages=messages, stream=True, stream_options={"include_usage": True}, **params
        )
        async for chunk in stream:
            data = chunk.to_dict()
            validate("CreateChatCompletionStreamResponse", data)
            chunks.append(data)
        assert chunks[-1]["usage"]["completion_tokens"] == max_tokens
        return check_stream(chunks, include_usage=True)

    async def run_all() -> tuple[list[dict[int, dict[str, Any]]], float]:
        async with async_openai_client:
            started = time.monotonic()
            results = await asyncio.gather(*(one(m) for m in prompts))
            return list(results), time.monotonic() - started

    results, concurrent = asyncio.run(run_all())
    for result, text in zip(results, expected, strict=True):
        assert result[0]["finish_reason"] == "length"
        assert result[0]["text"] == text
    assert concurrent < 0.6 * sequential, f"8 concurrent streams took {concurrent:.2f}s, one by one {sequential:.2f}s"


def _wait_until_idle(server: HearthServer, timeout: float = 10.0) -> float:
    """Wait until the server and its worker use < 0.3 CPU-s per second; return the last sample."""
    deadline = time.monotonic() + timeout
    used = float("inf")
    while time.monotonic() < deadline:
        before = server.cpu_seconds()
        time.sleep(1.0)
        used = server.cpu_seconds() - before
        if used < 0.3:
            break
    return used


@pytest.mark.parametrize("stream", [True, False], ids=["stream", "whole"])
def test_chat_client_disconnect_stops_generation(
    hearth_server: HearthServer, openai_client: openai.OpenAI, model_id: str, stream: bool
) -> None:
    """A client that goes away mid-generation frees the engine: the server and its worker go idle
    (a 4000-token generation left running would keep the CPU busy for a minute or more), and a new
    request is answered promptly."""
    body = {"model": model_id, "messages": PROMPT, "max_tokens": 4000, "ignore_eos": True, "stream": stream}
    # Its own client, so that closing it closes the socket mid-answer.
    with httpx.Client(base_url=hearth_server.base_url, timeout=httpx.Timeout(30, read=2.0)) as raw:
        if stream:
            with raw.stream("POST", "/v1/chat/completions", json=body) as response:
                assert response.status_code == 200
                seen = 0
                for line in response.iter_lines():
                    if line.startswith("data: {"):
                        validate("CreateChatCompletionStreamResponse", json.loads(line.removeprefix("data: ")))
                        seen += 1
                    if seen >= 5:
                        break
        else:
            # The whole answer would take over a minute: give up after 2 s without a byte.
            with pytest.raises(httpx.ReadTimeout):
                raw.post("/v1/chat/completions", json=body)

    used = _wait_until_idle(hearth_server)
    assert used < 0.3, f"the server still used {used:.2f} CPU-seconds per second after the client left"

    started = time.monotonic()
    answer = chat(openai_client, model_id, max_tokens=8, extra_body={"ignore_eos": True})
    assert time.monotonic() - started < 10
    assert answer["usage"]["completion_tokens"] == 8
    health = httpx.get(f"{hearth_server.base_url}/health", timeout=10)
    assert health.status_code == 200 and health.json()["status"] == "ok"
