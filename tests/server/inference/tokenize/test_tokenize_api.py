"""POST /tokenize and /detokenize in llama.cpp's and vLLM's shapes, against the real model."""

from __future__ import annotations

import httpx
import pytest

from tests.openai_schema import validate


@pytest.mark.parametrize("prefix", ["", "/v1"])
def test_tokenize_detokenize_round_trip(http: httpx.Client, model_id: str, prefix: str) -> None:
    """Text -> ids -> the same text; the count, the pieces and the context length come along."""
    text = "Hearth counts tokens: naïve café, 42!"
    tokens = http.post(
        f"{prefix}/tokenize",
        json={"model": model_id, "prompt": text, "add_special_tokens": False, "return_token_strs": True},
    )
    assert tokens.status_code == 200, tokens.text
    body = tokens.json()
    assert body["count"] == len(body["tokens"]) > 5
    assert body["max_model_len"] == http.get(f"/v1/models/{model_id}").json()["context_length"]
    assert "".join(body["token_strs"]) == text
    back = http.post(f"{prefix}/detokenize", json={"model": model_id, "tokens": body["tokens"]})
    assert back.status_code == 200, back.text
    assert back.json() == {"prompt": text, "content": text}


def test_llama_cpp_shape_and_default_model(http: httpx.Client) -> None:
    """llama.cpp's `content` field, no model named: the served model answers."""
    response = http.post("/tokenize", json={"content": "Hello world"})
    assert response.status_code == 200
    assert http.post("/detokenize", json={"tokens": response.json()["tokens"]}).json()["content"] == "Hello world"


def test_tokenize_messages_counts_the_chat_prompt(http: httpx.Client, model_id: str) -> None:
    """`messages` are rendered by the chat template: the count equals the chat prompt's usage."""
    messages = [{"role": "user", "content": "Count me, please."}]
    counted = http.post("/tokenize", json={"model": model_id, "messages": messages}).json()["count"]
    chat = http.post("/v1/chat/completions", json={"model": model_id, "messages": messages, "max_tokens": 1})
    assert counted == chat.json()["usage"]["prompt_tokens"]


@pytest.mark.parametrize(
    ("path", "body", "param"),
    [
        ("/tokenize", {"content": "a", "prompt": "b"}, "content"),
        ("/tokenize", {}, "content"),
        ("/detokenize", {"tokens": [10**9]}, "tokens"),
        ("/detokenize", {"tokens": [-1]}, "tokens[0]"),
        ("/tokenize", {"content": "a", "model": "no-such-model"}, "model"),
        ("/tokenize", {"content": "a", "return_token_strs": "1"}, "return_token_strs"),
    ],
    ids=["two-inputs", "no-input", "id-out-of-vocab", "negative-id", "unknown-model", "lax-boolean"],
)
def test_tokenize_refusals(http: httpx.Client, path: str, body: dict[str, object], param: str) -> None:
    """Bad input is a 4xx in OpenAI's error shape naming the field."""
    response = http.post(path, json=body)
    assert 400 <= response.status_code < 500
    validate("ErrorResponse", response.json())
    assert response.json()["error"]["param"] == param
