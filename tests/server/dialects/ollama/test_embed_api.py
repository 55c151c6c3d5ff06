"""/api/embed and the older /api/embeddings with the official client, on all-MiniLM-L6-v2."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import ollama
import pytest

from tests.server.conftest import EMBEDDING_MODEL


def _cosine(a: Sequence[float], b: Sequence[float]) -> float:
    x, y = np.asarray(a), np.asarray(b)
    return float(x @ y / (np.linalg.norm(x) * np.linalg.norm(y)))


def test_embed_one_and_many(client: ollama.Client) -> None:
    one = client.embed(model=EMBEDDING_MODEL, input="The cat sits on the mat.")
    assert len(one.embeddings) == 1 and len(one.embeddings[0]) == 384
    assert one.prompt_eval_count is not None and one.prompt_eval_count > 0
    many = client.embed(
        model=f"{EMBEDDING_MODEL}:latest",
        input=["The cat sits on the mat.", "A cat is sitting on a mat.", "Stock markets fell sharply today."],
    )
    assert len(many.embeddings) == 3
    assert _cosine(many.embeddings[0], one.embeddings[0]) > 0.999
    assert _cosine(many.embeddings[0], many.embeddings[1]) > _cosine(many.embeddings[0], many.embeddings[2])


def test_the_older_embeddings_endpoint(client: ollama.Client) -> None:
    old = client.embeddings(model=EMBEDDING_MODEL, prompt="The cat sits on the mat.")
    new = client.embed(model=EMBEDDING_MODEL, input="The cat sits on the mat.")
    assert _cosine(list(old.embedding), list(new.embeddings[0])) > 0.999
    assert list(client.embeddings(model=EMBEDDING_MODEL, prompt="").embedding) == []


def test_dimensions_other_than_the_models_are_refused(client: ollama.Client) -> None:
    with pytest.raises(ollama.ResponseError) as raised:
        client.embed(model=EMBEDDING_MODEL, input="x", dimensions=12)
    assert raised.value.status_code == 400 and "dimensions" in raised.value.error
