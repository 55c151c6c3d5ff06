"""End-to-end tests of POST /v1/embeddings through the official `openai` client, with the real
all-MiniLM-L6-v2 converted to OpenVINO IR (tests/server/conftest.py)."""

from __future__ import annotations

import base64
from typing import Any

import httpx
import numpy as np
import openai
import pytest

from tests.conftest import HearthServer
from tests.openai_schema import validate
from tests.server.conftest import EMBEDDING_MODEL

DIMENSIONS = 384
RELATED = ("A man is playing a guitar on stage.", "A musician performs a song with his guitar.")
UNRELATED = "The quarterly tax report is due on Friday."


def embed_raw(server: HearthServer, **body: Any) -> httpx.Response:
    """POST /v1/embeddings with a raw body, for what the client would rewrite or refuse."""
    return httpx.post(f"{server.api_url}/embeddings", json={"model": EMBEDDING_MODEL, **body}, timeout=60)


def vectors(client: openai.OpenAI, texts: list[str]) -> np.ndarray[Any, np.dtype[np.float64]]:
    """The float vectors of `texts`, schema-checked."""
    response = client.embeddings.create(model=EMBEDDING_MODEL, input=texts, encoding_format="float")
    validate("CreateEmbeddingResponse", response.to_dict())
    assert [item.index for item in response.data] == list(range(len(texts)))
    return np.array([item.embedding for item in response.data])


def test_cosine_sanity(embedding_client: openai.OpenAI) -> None:
    """Two paraphrases are much closer than an unrelated sentence; vectors are unit length."""
    matrix = vectors(embedding_client, [*RELATED, UNRELATED])
    assert matrix.shape == (3, DIMENSIONS)
    np.testing.assert_allclose(np.linalg.norm(matrix, axis=1), 1.0, atol=1e-4)
    related = float(matrix[0] @ matrix[1])
    unrelated = max(float(matrix[0] @ matrix[2]), float(matrix[1] @ matrix[2]))
    assert related > 0.5, related
    assert unrelated < 0.25, unrelated
    assert related - unrelated > 0.4


def test_float_and_base64_agree(embedding_client: openai.OpenAI, embedding_server: HearthServer) -> None:
    """base64 is the little-endian float32 of the same vector; the client's default (base64,
    decoded by the client) gives the same numbers."""
    floats = embed_raw(embedding_server, input=RELATED[0], encoding_format="float").json()
    encoded = embed_raw(embedding_server, input=RELATED[0], encoding_format="base64").json()
    validate("CreateEmbeddingResponse", floats)
    assert isinstance(encoded["data"][0]["embedding"], str)
    decoded = np.frombuffer(base64.b64decode(encoded["data"][0]["embedding"]), dtype="<f4")
    np.testing.assert_allclose(decoded, np.array(floats["data"][0]["embedding"], dtype=np.float32), rtol=0, atol=0)
    via_client = embedding_client.embeddings.create(model=EMBEDDING_MODEL, input=RELATED[0])
    np.testing.assert_allclose(np.array(via_client.data[0].embedding), decoded, atol=1e-7)
    assert floats["usage"] == encoded["usage"]


def test_list_input_is_batched_consistently(embedding_client: openai.OpenAI) -> None:
    """A list of inputs gives one vector each, in order, equal to embedding them one at a time;
    usage counts every input's tokens (special tokens included)."""
    texts = [f"Sentence number {i} is about {topic}." for i, topic in enumerate(["cats", "stocks", "rain"] * 15)]
    batch = vectors(embedding_client, texts)
    assert batch.shape == (len(texts), DIMENSIONS)
    for i in (0, 1, len(texts) - 1):
        single = vectors(embedding_client, [texts[i]])[0]
        np.testing.assert_allclose(batch[i], single, atol=2e-3)
    one = embedding_client.embeddings.create(model=EMBEDDING_MODEL, input="hello world")
    # [CLS] hello world [SEP]
    assert one.usage.prompt_tokens == one.usage.total_tokens == 4
    many = embedding_client.embeddings.create(model=EMBEDDING_MODEL, input=["hello world"] * 3)
    assert many.usage.prompt_tokens == 12


def test_dimensions(embedding_client: openai.OpenAI) -> None:
    """The model's own size is accepted; any other is a 400 naming `dimensions`."""
    same = embedding_client.embeddings.create(model=EMBEDDING_MODEL, input="x y", dimensions=DIMENSIONS)
    assert len(same.data[0].embedding) == DIMENSIONS
    with pytest.raises(openai.BadRequestError) as caught:
        embedding_client.embeddings.create(model=EMBEDDING_MODEL, input="x y", dimensions=128)
    assert caught.value.body["param"] == "dimensions"  # type: ignore[index]
    assert "384" in caught.value.message


@pytest.mark.parametrize(
    ("body", "param"),
    [
        ({"input": ""}, "input"),
        ({"input": []}, "input"),
        ({"input": ["fine", ""]}, "input"),
        ({"input": [101, 2023, 102]}, "input"),
        ({"input": [[101, 2023, 102]]}, "input"),
        ({"input": ["text", 3]}, "input"),
        ({"input": ["x"] * 2049}, "input"),
        ({"input": "x", "encoding_format": "int8"}, "encoding_format"),
        ({"input": "x", "dimensions": 0}, "dimensions"),
        ({"input": " ".join(["word"] * 600)}, "input"),
    ],
)
def test_bad_input_is_a_clear_400(embedding_server: HearthServer, body: dict[str, Any], param: str) -> None:
    """Empty, token-id, mixed, too many, too long or out-of-range input: 400 in OpenAI's shape."""
    response = embed_raw(embedding_server, **body)
    assert response.status_code == 400, response.text[:300]
    error = response.json()["error"]
    assert error["type"] == "invalid_request_error"
    assert error["param"] == param
    assert error["message"]


def test_too_long_input_names_the_limit(embedding_server: HearthServer) -> None:
    """An input longer than the model's 256 tokens is refused (as OpenAI does), not truncated."""
    response = embed_raw(embedding_server, input=["short", " ".join(["word"] * 300)])
    assert response.status_code == 400
    error = response.json()["error"]
    assert error["code"] == "context_length_exceeded"
    assert "256" in error["message"] and "input[1]" in error["message"]


def test_models_do_not_cross_endpoints(embedding_client: openai.OpenAI, model_id: str) -> None:
    """The chat model cannot embed and the embedding model cannot chat: 400s that say why."""
    with pytest.raises(openai.BadRequestError) as caught:
        embedding_client.embeddings.create(model=model_id, input="hi")
    assert "chat model" in caught.value.message
    assert caught.value.body["param"] == "model"  # type: ignore[index]
    with pytest.raises(openai.BadRequestError) as caught:
        embedding_client.chat.completions.create(
            model=EMBEDDING_MODEL, messages=[{"role": "user", "content": "hi"}], max_tokens=2
        )
    assert "embedding model" in caught.value.message
    with pytest.raises(openai.NotFoundError):
        embedding_client.embeddings.create(model="no-such-model", input="hi")


def test_models_list_and_health(embedding_client: openai.OpenAI, embedding_server: HearthServer, model_id: str) -> None:
    """/v1/models lists both models; /health reports both ready."""
    listed = embedding_client.models.with_raw_response.list().http_response.json()
    validate("ListModelsResponse", listed)
    assert {m["id"] for m in listed["data"]} == {model_id, EMBEDDING_MODEL}
    card = embedding_client.models.retrieve(EMBEDDING_MODEL)
    assert card.id == EMBEDDING_MODEL
    health = httpx.get(f"{embedding_server.base_url}/health", timeout=10).json()
    assert health == {"status": "ok", "models": {model_id: "ready", EMBEDDING_MODEL: "ready"}, "audit": "ok"}
