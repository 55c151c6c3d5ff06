"""End-to-end tests of GET /v1/models, GET /v1/models/{id} and GET /health."""

from __future__ import annotations

from typing import Any

import httpx
import openai
import pytest

from tests.conftest import HearthServer
from tests.openai_schema import validate

DEFAULT_CONTEXT = 8192  # SmolLM2-135M's trained context


def _not_found(error: openai.NotFoundError) -> dict[str, Any]:
    body: dict[str, Any] = error.response.json()
    validate("ErrorResponse", body)
    assert body["error"]["type"] == "invalid_request_error"
    assert body["error"]["code"] == "model_not_found"
    assert body["error"]["param"] == "model"
    error_body: dict[str, Any] = body["error"]
    return error_body


def test_list_models(openai_client: openai.OpenAI, model_id: str) -> None:
    """The list holds the served model with its effective context length."""
    page = openai_client.models.list()
    raw = openai_client.models.with_raw_response.list().http_response.json()
    validate("ListModelsResponse", raw)
    assert raw["object"] == "list"
    assert [m["id"] for m in raw["data"]] == [model_id]
    assert [m.id for m in page.data] == [model_id]
    (card,) = raw["data"]
    validate("Model", card)
    assert card["object"] == "model"
    assert card["context_length"] == card["max_model_len"] == DEFAULT_CONTEXT
    assert isinstance(card["created"], int) and card["created"] > 0
    assert card["owned_by"]


def test_retrieve_model(openai_client: openai.OpenAI, model_id: str) -> None:
    """Retrieving the served model gives the same object as the list."""
    model = openai_client.models.retrieve(model_id)
    card = model.to_dict()
    validate("Model", card)
    assert card["id"] == model_id
    listed = openai_client.models.with_raw_response.list().http_response.json()["data"][0]
    assert card == listed


def test_retrieve_unknown_model(openai_client: openai.OpenAI) -> None:
    """An unknown id is 404 model_not_found."""
    with pytest.raises(openai.NotFoundError) as caught:
        openai_client.models.retrieve("no-such-model")
    assert "no-such-model" in _not_found(caught.value)["message"]


@pytest.mark.parametrize("stream", [False, True])
def test_chat_unknown_model(openai_client: openai.OpenAI, stream: bool) -> None:
    """Chat with an unknown model is 404 model_not_found, streamed or not."""
    with pytest.raises(openai.NotFoundError) as caught:
        openai_client.chat.completions.create(
            model="no-such-model", messages=[{"role": "user", "content": "Hi"}], max_tokens=4, stream=stream
        )
    _not_found(caught.value)


@pytest.mark.parametrize("stream", [False, True])
def test_completion_unknown_model(openai_client: openai.OpenAI, stream: bool) -> None:
    """A legacy completion with an unknown model is 404 model_not_found."""
    with pytest.raises(openai.NotFoundError) as caught:
        openai_client.completions.create(model="no-such-model", prompt="Hi", max_tokens=4, stream=stream)
    _not_found(caught.value)


def test_health(http: httpx.Client, model_id: str) -> None:
    """/health is 200 with every model ready and the audit log written."""
    response = http.get("/health")
    assert response.status_code == 200
    assert response.json() == {"status": "ok", "models": {model_id: "ready"}, "audit": "ok"}


def test_context_length_flag(small_context_server: HearthServer, model_id: str) -> None:
    """`--context-length` caps the context: the model card reports it, and an answer without
    max_tokens stops where prompt plus answer fill it. (The schema fuzzer shares this server and may
    have installed hub artifacts in its home: they are listed too.)"""
    response = httpx.get(f"{small_context_server.api_url}/models", timeout=30)
    assert response.status_code == 200
    body = response.json()
    validate("ListModelsResponse", body)
    (card,) = [c for c in body["data"] if c["id"] == model_id]
    assert card["context_length"] == card["max_model_len"] == 128
    request = {"model": card["id"], "messages": [{"role": "user", "content": "Hi"}], "ignore_eos": True}
    answer = httpx.post(f"{small_context_server.api_url}/chat/completions", json=request, timeout=60)
    assert answer.status_code == 200, answer.text[:300]
    validate("CreateChatCompletionResponse", answer.json())
    usage = answer.json()["usage"]
    assert usage["total_tokens"] == 128
    assert answer.json()["choices"][0]["finish_reason"] == "length"
