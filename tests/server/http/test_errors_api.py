"""End-to-end tests of error handling: every failure is OpenAI-shaped and never a 500.

The official client is used where it can express the request (wrong types and out-of-range values
pass through it unchecked); raw httpx for malformed JSON, unknown routes, wrong methods and
oversize bodies.
"""

from __future__ import annotations

import json
from typing import Any

import httpx
import httpx2
import openai
import pytest
from openai.types.chat import ChatCompletionMessageParam

from tests.openai_schema import validate

MESSAGES: list[ChatCompletionMessageParam] = [{"role": "user", "content": "Hi"}]
DEFAULT_MAX_BODY = 8 * 1024 * 1024


def error_of(response: httpx.Response | httpx2.Response, status: int) -> dict[str, Any]:
    """Assert `status` and OpenAI's error shape; return the error object.

    `response` comes from raw httpx, or from the `openai` client (which uses httpx2) via an APIStatusError."""
    assert response.status_code == status, f"{response.status_code}: {response.text[:500]}"
    assert response.headers.get("content-type", "").startswith("application/json")
    body: dict[str, Any] = response.json()
    validate("ErrorResponse", body)
    assert set(body["error"]) == {"message", "type", "param", "code"}
    assert body["error"]["message"]
    error: dict[str, Any] = body["error"]
    return error


def test_malformed_json(http: httpx.Client) -> None:
    """A body that is not JSON is 400 invalid_request_error."""
    for route in ("/v1/chat/completions", "/v1/completions"):
        for raw in (b'{"model": ', b"not json", b"", b"[1, 2"):
            response = http.post(route, content=raw, headers={"content-type": "application/json"})
            assert error_of(response, 400)["type"] == "invalid_request_error", raw


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("max_tokens", "many"),
        ("temperature", "hot"),
        ("n", 1.5),
        ("stream", "yes"),
        ("stop", 3),
        ("messages", "Hi"),
        ("model", 42),
        ("seed", "abc"),
    ],
)
def test_chat_wrong_type(openai_client: openai.OpenAI, model_id: str, field: str, value: Any) -> None:
    """A field of the wrong type is 400 naming the field."""
    body: dict[str, Any] = {"model": model_id, "messages": MESSAGES, "max_tokens": 4, field: value}
    with pytest.raises(openai.BadRequestError) as caught:
        openai_client.chat.completions.create(**body)
    error = error_of(caught.value.response, 400)
    assert error["type"] == "invalid_request_error"
    assert error["param"] == field


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("temperature", 2.5),
        ("temperature", -0.1),
        ("top_p", 1.5),
        ("n", 0),
        ("n", 1000),
        ("presence_penalty", 3.0),
        ("frequency_penalty", -2.5),
        ("max_tokens", 0),
        ("max_completion_tokens", -1),
        ("top_logprobs", 50),
        ("stop", [f"s{i}" for i in range(17)]),  # max_stop_sequences: 16
    ],
)
def test_chat_out_of_range(openai_client: openai.OpenAI, model_id: str, field: str, value: Any) -> None:
    """An out-of-range value is 400 naming the field."""
    body: dict[str, Any] = {"model": model_id, "messages": MESSAGES, field: value}
    body.setdefault("max_tokens", 4)
    with pytest.raises(openai.BadRequestError) as caught:
        openai_client.chat.completions.create(**body)
    error = error_of(caught.value.response, 400)
    assert error["param"] == field


@pytest.mark.parametrize(("field", "value"), [("temperature", 9), ("max_tokens", -1), ("n", 0), ("prompt", 5)])
def test_completion_bad_values(openai_client: openai.OpenAI, model_id: str, field: str, value: Any) -> None:
    """The legacy endpoint validates its fields the same way."""
    body: dict[str, Any] = {"model": model_id, "prompt": "Hi", "max_tokens": 4, field: value}
    with pytest.raises(openai.BadRequestError) as caught:
        openai_client.completions.create(**body)
    assert error_of(caught.value.response, 400)["param"] == field


def test_empty_messages(openai_client: openai.OpenAI, model_id: str) -> None:
    """An empty conversation is 400 on `messages`."""
    with pytest.raises(openai.BadRequestError) as caught:
        openai_client.chat.completions.create(model=model_id, messages=[], max_tokens=4)
    assert error_of(caught.value.response, 400)["param"] == "messages"


@pytest.mark.parametrize(
    "message",
    [
        {"role": "wizard", "content": "Hi"},
        {"role": "user"},
        {"content": "Hi"},
        {"role": "user", "content": [{"type": "video", "url": "x"}]},
        {"role": "user", "content": 5},
    ],
    ids=["unknown-role", "no-content", "no-role", "unknown-part", "content-int"],
)
def test_bad_message(openai_client: openai.OpenAI, model_id: str, message: dict[str, Any]) -> None:
    """A malformed message is 400 pointing into `messages`."""
    with pytest.raises(openai.BadRequestError) as caught:
        # deliberately malformed: the SDK's types rightly refuse it, the server must answer 400
        openai_client.chat.completions.create(model=model_id, messages=[message], max_tokens=4)  # type: ignore[list-item]
    param = error_of(caught.value.response, 400)["param"]
    assert param is not None and param.startswith("messages"), param


def test_missing_required_fields(http: httpx.Client, model_id: str) -> None:
    """Missing `model` / `messages` / `prompt` is 400."""
    for route, body in (
        ("/v1/chat/completions", {"messages": MESSAGES}),
        ("/v1/chat/completions", {"model": model_id}),
        ("/v1/completions", {"model": model_id}),
        ("/v1/completions", {"prompt": "Hi"}),
        ("/v1/chat/completions", []),
        ("/v1/chat/completions", "just a string"),
    ):
        assert error_of(http.post(route, json=body), 400)["type"] == "invalid_request_error", (route, body)


def _huge_prompt(words: int = 9000) -> str:
    """A prompt of more tokens than the default model's 8192-token context."""
    vocabulary = ["apple", "river", "mountain", "quietly", "blue", "engine", "seven", "window"]
    return " ".join(vocabulary[i % len(vocabulary)] for i in range(words))


@pytest.mark.parametrize("stream", [False, True])
def test_chat_context_length_exceeded(openai_client: openai.OpenAI, model_id: str, stream: bool) -> None:
    """A prompt longer than the context is 400 context_length_exceeded (before any stream starts)."""
    with pytest.raises(openai.BadRequestError) as caught:
        openai_client.chat.completions.create(
            model=model_id, messages=[{"role": "user", "content": _huge_prompt()}], max_tokens=4, stream=stream
        )
    error = error_of(caught.value.response, 400)
    assert error["code"] == "context_length_exceeded"
    assert error["param"] == "messages"
    assert "8192" in error["message"]


def test_completion_context_length_exceeded(openai_client: openai.OpenAI, model_id: str) -> None:
    """The same for a legacy prompt, with `param` prompt."""
    with pytest.raises(openai.BadRequestError) as caught:
        openai_client.completions.create(model=model_id, prompt=_huge_prompt(), max_tokens=4)
    error = error_of(caught.value.response, 400)
    assert error["code"] == "context_length_exceeded"
    assert error["param"] == "prompt"


def test_max_tokens_beyond_context(openai_client: openai.OpenAI, model_id: str) -> None:
    """max_tokens larger than the context is 400 context_length_exceeded, for both endpoints."""
    with pytest.raises(openai.BadRequestError) as caught:
        openai_client.chat.completions.create(model=model_id, messages=MESSAGES, max_tokens=9000)
    assert error_of(caught.value.response, 400)["code"] == "context_length_exceeded"
    with pytest.raises(openai.BadRequestError) as caught:
        openai_client.chat.completions.create(model=model_id, messages=MESSAGES, max_completion_tokens=8192)
    assert error_of(caught.value.response, 400)["code"] == "context_length_exceeded"
    with pytest.raises(openai.BadRequestError) as caught:
        openai_client.completions.create(model=model_id, prompt="Hi", max_tokens=100_000)
    assert error_of(caught.value.response, 400)["code"] == "context_length_exceeded"


def test_token_id_beyond_vocabulary(openai_client: openai.OpenAI, model_id: str) -> None:
    """A token id outside the vocabulary is 400 on `prompt`."""
    with pytest.raises(openai.BadRequestError) as caught:
        openai_client.completions.create(model=model_id, prompt=[1, 2, 10_000_000], max_tokens=4)
    assert error_of(caught.value.response, 400)["param"] == "prompt"


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/v1/nope"),
        ("POST", "/v1/audio/speech"),
        ("GET", "/v2/models"),
        ("POST", "/chat/completions"),
        ("GET", "/v1"),  # `/` itself is the web console now (tests/server/console)
    ],
)
def test_unknown_route(http: httpx.Client, method: str, path: str) -> None:
    """An unknown route is 404 in OpenAI's error shape."""
    error = error_of(http.request(method, path, json={}), 404)
    assert error["type"] == "invalid_request_error"


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/v1/chat/completions"),
        ("PUT", "/v1/completions"),
        ("DELETE", "/v1/models"),
        ("POST", "/v1/models"),
        ("POST", "/health"),
    ],
)
def test_wrong_method(http: httpx.Client, method: str, path: str) -> None:
    """A known route with the wrong method is 405 with an Allow header."""
    response = http.request(method, path)
    error = error_of(response, 405)
    assert error["type"] == "invalid_request_error"
    assert "allow" in response.headers


def test_oversize_body(http: httpx.Client, model_id: str) -> None:
    """A body over max_body_bytes (default 8 MiB) is 413, and the server keeps serving."""
    filler = "x" * (DEFAULT_MAX_BODY + 1024)
    body = {"model": model_id, "messages": [{"role": "user", "content": filler}]}
    content = json.dumps(body).encode()
    assert len(content) > DEFAULT_MAX_BODY
    try:
        response = http.post("/v1/chat/completions", content=content, headers={"content-type": "application/json"})
    except httpx.TransportError as exc:  # the server may close before reading it all
        pytest.fail(f"the server dropped the connection instead of answering 413: {exc!r}")
    error = error_of(response, 413)
    assert error["type"] == "invalid_request_error"
    assert http.get("/health").status_code == 200


def test_errors_are_never_500(http: httpx.Client, model_id: str) -> None:
    """A battery of odd requests: each is answered < 500 in OpenAI's error shape (or 200)."""
    chat_bodies: list[Any] = [
        {"model": model_id, "messages": [{"role": "tool", "content": "x", "tool_call_id": "1"}], "max_tokens": 2},
        {
            "model": model_id,
            "messages": [{"role": "assistant", "tool_calls": [{"id": "1", "type": "function"}]}],
            "max_tokens": 2,
        },
        {"model": model_id, "messages": MESSAGES, "logit_bias": {"1": 5}, "max_tokens": 2},
        {"model": model_id, "messages": MESSAGES, "tool_choice": "auto", "max_tokens": 2},
        {"model": model_id, "messages": MESSAGES, "response_format": {"type": "xml"}, "max_tokens": 2},
        {"model": model_id, "messages": MESSAGES, "stream_options": {"include_usage": "yes"}, "max_tokens": 2},
        {"model": model_id, "messages": MESSAGES, "seed": 2**70, "max_tokens": 2},
        {"model": model_id, "messages": [{"role": "user", "content": []}], "max_tokens": 2},
        {"model": model_id, "messages": [{"role": "user", "content": "\x00\ud7ff"}], "max_tokens": 2},
        {"model": model_id, "messages": MESSAGES, "max_tokens": 2**63},
        {"model": model_id, "messages": MESSAGES, "stop": "", "max_tokens": 2},
        {"model": "", "messages": MESSAGES},
        {"model": model_id, "messages": MESSAGES, "n": 3, "max_tokens": 2, "stream": True},
        {"model": model_id, "messages": [{"role": "system", "content": "Only a system prompt."}], "max_tokens": 2},
        {"model": model_id, "messages": [{"role": "assistant", "content": None}], "max_tokens": 2},
        {"model": model_id, "messages": MESSAGES, "max_tokens": 2, "unknown_field": {"nested": [1]}},
        {"model": model_id, "messages": [{"role": "user", "content": "Hi", "name": 5}], "max_tokens": 2},
        {
            "model": model_id,
            "messages": MESSAGES,
            "temperature": None,
            "max_tokens": None,
            "max_completion_tokens": 2,
            "n": None,
            "stop": None,
        },
    ]
    completion_bodies: list[Any] = [
        {"model": model_id, "prompt": "", "max_tokens": 2},
        {"model": model_id, "prompt": [[1, 2], [3, -4]], "max_tokens": 2},
        {"model": model_id, "prompt": [[]], "max_tokens": 2},
        {"model": model_id, "prompt": [True, False], "max_tokens": 2},
        {"model": model_id, "prompt": [""], "max_tokens": 2, "echo": True},
        {"model": model_id, "prompt": "Hi", "max_tokens": 0, "stream": True},
        {"model": model_id, "prompt": "Hi", "best_of": 2, "n": 2, "max_tokens": 2},
        {"model": model_id, "prompt": {"text": "Hi"}, "max_tokens": 2},
    ]
    failures: list[str] = []
    for route, bodies in (("/v1/chat/completions", chat_bodies), ("/v1/completions", completion_bodies)):
        for body in bodies:
            response = http.post(route, json=body)
            if response.status_code >= 500:
                failures.append(f"{route} {body!r} -> {response.status_code} {response.text[:300]}")
                continue
            if response.status_code != 200:
                try:
                    validate("ErrorResponse", response.json())
                except Exception as exc:
                    failures.append(f"{route} {body!r} -> {response.status_code} not an OpenAI error: {exc}")
            elif response.headers.get("content-type", "").startswith("application/json") and not body.get("stream"):
                schema = "CreateChatCompletionResponse" if "chat" in route else "CreateCompletionResponse"
                validate(schema, response.json())
    assert not failures, "\n".join(failures)


@pytest.mark.parametrize("route", ["/v1/chat/completions", "/v1/completions"])
def test_top_p_zero_sampling(http: httpx.Client, model_id: str, route: str) -> None:
    """top_p 0 is inside the documented range [0, 1]: sampling with it must work (OpenAI accepts it),
    not fail inside the engine with a 500."""
    body: dict[str, Any] = {"model": model_id, "max_tokens": 4, "temperature": 1.0, "top_p": 0.0}
    body.update({"messages": MESSAGES} if "chat" in route else {"prompt": "Hello"})
    response = http.post(route, json=body)
    assert response.status_code == 200, f"{response.status_code} {response.text[:300]}"
    validate("CreateChatCompletionResponse" if "chat" in route else "CreateCompletionResponse", response.json())
