"""End-to-end tests of the legacy POST /v1/completions through the official `openai` client.

Whole responses are validated against OpenAI's CreateCompletionResponse. Stream chunks are
validated against `CreateCompletionStreamChunk` (CreateCompletionResponse with `finish_reason`
and `usage` nullable, see tests/openai_schema.py), and additionally against the strict
CreateCompletionResponse whenever they carry no such null.
"""

from __future__ import annotations

from collections import defaultdict
from typing import Any

import httpx
import openai
import pytest

from tests.conftest import parse_sse
from tests.openai_schema import COMPLETION_CHUNK, validate
from tests.server.inference.wire import check_answer

PROMPT = "The capital of France is Paris. The capital of Germany is"


def complete(client: openai.OpenAI, model: str, **kwargs: Any) -> dict[str, Any]:
    """A non-streamed completion, schema-checked, as the wire dict."""
    kwargs.setdefault("prompt", PROMPT)
    response = client.completions.create(model=model, **kwargs)
    body: dict[str, Any] = response.to_dict()
    check_answer(body, "CreateCompletionResponse", "text_completion", model, "cmpl-")
    for choice in body["choices"]:
        assert choice["finish_reason"] in ("stop", "length")
    return body


def validate_chunk(chunk: dict[str, Any]) -> None:
    """Validate one stream chunk (strictly too when it has no null finish_reason / usage)."""
    validate(COMPLETION_CHUNK, chunk)
    if chunk.get("usage", 0) is not None and all(c["finish_reason"] is not None for c in chunk["choices"]):
        validate("CreateCompletionResponse", chunk)


def stream_complete(client: openai.OpenAI, model: str, **kwargs: Any) -> list[dict[str, Any]]:
    """A streamed completion's chunks, each schema-checked, as wire dicts."""
    kwargs.setdefault("prompt", PROMPT)
    chunks: list[dict[str, Any]] = []
    with client.completions.create(model=model, stream=True, **kwargs) as stream:
        for chunk in stream:
            data: dict[str, Any] = chunk.to_dict()
            validate_chunk(data)
            chunks.append(data)
    return chunks


def check_stream(
    chunks: list[dict[str, Any]], choices: int = 1, include_usage: bool = False
) -> dict[int, dict[str, Any]]:
    """Assert the stream invariants; return per choice index its text and finish_reason."""
    assert chunks
    assert len({c["id"] for c in chunks}) == 1
    assert all(c["object"] == "text_completion" for c in chunks)
    body = chunks
    if include_usage:
        *body, last = chunks
        assert last["choices"] == []
        assert last["usage"] is not None
        assert all("usage" in c and c["usage"] is None for c in body)
    else:
        assert all(c.get("usage") is None for c in chunks)
    per_choice: dict[int, list[dict[str, Any]]] = defaultdict(list)
    for c in body:
        assert len(c["choices"]) == 1
        per_choice[c["choices"][0]["index"]].append(c["choices"][0])
    assert sorted(per_choice) == list(range(choices))
    result: dict[int, dict[str, Any]] = {}
    for index, parts in per_choice.items():
        assert parts[-1]["finish_reason"] in ("stop", "length"), f"choice {index}: finish_reason in its last chunk"
        assert all(p["finish_reason"] is None for p in parts[:-1]), f"choice {index}: finish_reason only at the end"
        result[index] = {"text": "".join(p["text"] for p in parts), "finish_reason": parts[-1]["finish_reason"]}
    return result


def test_completion_string_prompt(openai_client: openai.OpenAI, model_id: str) -> None:
    """A string prompt is continued."""
    body = complete(openai_client, model_id, max_tokens=8)
    (choice,) = body["choices"]
    assert choice["index"] == 0
    assert choice["text"]
    assert 0 < body["usage"]["completion_tokens"] <= 8


def test_completion_default_max_tokens_is_16(openai_client: openai.OpenAI, model_id: str) -> None:
    """Like OpenAI, the legacy endpoint stops at 16 tokens when max_tokens is not given."""
    body = complete(openai_client, model_id, extra_body={"ignore_eos": True})
    assert body["usage"]["completion_tokens"] == 16
    assert body["choices"][0]["finish_reason"] == "length"


def test_completion_list_of_prompts(openai_client: openai.OpenAI, model_id: str) -> None:
    """A list of prompts gives one choice per prompt (times n), in prompt order."""
    prompts = ["One, two, three,", "Roses are red,"]
    body = complete(openai_client, model_id, prompt=prompts, max_tokens=6, n=2, echo=True, seed=3)
    assert [c["index"] for c in body["choices"]] == [0, 1, 2, 3]
    for choice in body["choices"]:
        assert choice["text"].startswith(prompts[choice["index"] // 2])
    single = [complete(openai_client, model_id, prompt=p, max_tokens=1)["usage"]["prompt_tokens"] for p in prompts]
    assert body["usage"]["prompt_tokens"] == sum(single), "each distinct prompt is counted once"


def test_completion_token_id_prompt(openai_client: openai.OpenAI, model_id: str) -> None:
    """A prompt of token ids (and a list of them) is accepted; its length is the prompt_tokens."""
    ids = [504, 3458, 282, 4649, 314]
    body = complete(openai_client, model_id, prompt=ids, max_tokens=4)
    assert body["usage"]["prompt_tokens"] == len(ids)
    many = complete(openai_client, model_id, prompt=[ids, ids[:3]], max_tokens=4)
    assert [c["index"] for c in many["choices"]] == [0, 1]
    assert many["usage"]["prompt_tokens"] == len(ids) + 3


def test_completion_echo(openai_client: openai.OpenAI, model_id: str) -> None:
    """echo prepends the prompt, whole and streamed; with max_tokens 0 only the prompt comes back."""
    params: dict[str, Any] = {"max_tokens": 8, "temperature": 0, "echo": True}
    body = complete(openai_client, model_id, **params)
    text = body["choices"][0]["text"]
    assert text.startswith(PROMPT) and len(text) > len(PROMPT)
    (streamed,) = check_stream(stream_complete(openai_client, model_id, **params)).values()
    assert streamed["text"] == text
    only_prompt = complete(openai_client, model_id, max_tokens=0, echo=True)
    assert only_prompt["choices"][0]["text"] == PROMPT
    assert only_prompt["usage"]["completion_tokens"] == 0


@pytest.mark.parametrize("n", [1, 2])
def test_completion_temperature_zero_stream_equals_non_stream(
    openai_client: openai.OpenAI, model_id: str, n: int
) -> None:
    """Greedy decoding gives the same text streamed and whole."""
    params: dict[str, Any] = {"max_tokens": 24, "temperature": 0, "n": n}
    body = complete(openai_client, model_id, **params)
    streamed = check_stream(stream_complete(openai_client, model_id, **params), choices=n)
    for choice in body["choices"]:
        assert streamed[choice["index"]] == {"text": choice["text"], "finish_reason": choice["finish_reason"]}


def test_completion_stream_usage(openai_client: openai.OpenAI, model_id: str) -> None:
    """With include_usage, the last chunk has no choices and the same usage as the whole answer."""
    params: dict[str, Any] = {"max_tokens": 8, "temperature": 0, "prompt": ["Hello,", "Goodbye,"]}
    body = complete(openai_client, model_id, **params)
    chunks = stream_complete(openai_client, model_id, stream_options={"include_usage": True}, **params)
    check_stream(chunks, choices=2, include_usage=True)
    assert chunks[-1]["usage"] == {k: body["usage"][k] for k in ("prompt_tokens", "completion_tokens", "total_tokens")}


def test_completion_max_tokens_ignore_eos(openai_client: openai.OpenAI, model_id: str) -> None:
    """max_tokens with ignore_eos gives exactly that many tokens and finish_reason length."""
    body = complete(openai_client, model_id, max_tokens=12, extra_body={"ignore_eos": True})
    assert body["usage"]["completion_tokens"] == 12
    assert body["choices"][0]["finish_reason"] == "length"


def test_completion_stop(openai_client: openai.OpenAI, model_id: str) -> None:
    """A stop sequence cuts the text before it; streamed and whole agree."""
    params: dict[str, Any] = {"max_tokens": 32, "temperature": 0, "extra_body": {"ignore_eos": True}}
    reference = complete(openai_client, model_id, **params)["choices"][0]["text"]
    words = reference.split(" ")
    assert len(words) >= 5, reference
    stop_word = " " + words[3]
    body = complete(openai_client, model_id, stop=[stop_word, "\u2603"], **params)
    (choice,) = body["choices"]
    assert choice["text"] == reference[: reference.index(stop_word)]
    assert choice["finish_reason"] == "stop"
    (streamed,) = check_stream(stream_complete(openai_client, model_id, stop=[stop_word, "\u2603"], **params)).values()
    assert streamed == {"text": choice["text"], "finish_reason": "stop"}


def test_completion_seed_reproducible(openai_client: openai.OpenAI, model_id: str) -> None:
    """The same seed at temperature 1 gives the same text."""
    params: dict[str, Any] = {"max_tokens": 12, "temperature": 1.0, "seed": 99}
    assert (
        complete(openai_client, model_id, **params)["choices"] == complete(openai_client, model_id, **params)["choices"]
    )


def test_completion_raw_sse_framing(http: httpx.Client, model_id: str) -> None:
    """Raw framing of a streamed completion: data events, then data: [DONE] last."""
    body = {"model": model_id, "prompt": PROMPT, "max_tokens": 6, "stream": True}
    with http.stream("POST", "/v1/completions", json=body) as response:
        assert response.status_code == 200
        content_type = response.headers.get("content-type", "")
        raw = response.read().decode()
    chunks = parse_sse(raw)
    for chunk in chunks:
        validate_chunk(chunk)
    check_stream(chunks)
    assert content_type.startswith("text/event-stream"), f"SSE served as {content_type!r}"


@pytest.mark.parametrize(
    ("kwargs", "param"),
    [
        ({"logprobs": 2}, "logprobs"),
        ({"suffix": "the end"}, "suffix"),  # the default model has no FIM tokens
        ({"best_of": 3}, "best_of"),
        ({"logit_bias": {"50256": -100}}, "logit_bias"),
        ({"prompt": []}, "prompt"),
        ({"prompt": ["text", 5]}, "prompt"),
        ({"prompt": [1, 2], "echo": True}, "echo"),
    ],
    ids=["logprobs", "suffix", "best_of", "logit_bias", "empty-list", "mixed-list", "echo-token-ids"],
)
def test_completion_refusals(openai_client: openai.OpenAI, model_id: str, kwargs: dict[str, Any], param: str) -> None:
    """What the legacy endpoint does not support is refused with 400 naming the parameter."""
    kwargs.setdefault("prompt", PROMPT)
    with pytest.raises(openai.BadRequestError) as caught:
        openai_client.completions.create(model=model_id, max_tokens=4, **kwargs)
    body = caught.value.response.json()
    validate("ErrorResponse", body)
    assert body["error"]["type"] == "invalid_request_error"
    assert body["error"]["param"] == param
