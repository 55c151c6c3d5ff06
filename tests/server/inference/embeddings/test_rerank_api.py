"""End-to-end tests of POST /v1/rerank (and /rerank, /v2/rerank) in the Jina/Cohere shape that
llama.cpp and vLLM answer; the `openai` client has no rerank call, so these use httpx."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from tests.conftest import HearthServer
from tests.server.conftest import EMBEDDING_MODEL

QUERY = "How do I bake bread at home?"
DOCUMENTS = [
    "The stock market fell sharply on Tuesday after the earnings report.",
    "Mix flour, water, yeast and salt, let the dough rise, then bake it in a hot oven.",
    "Penguins live in the Southern Hemisphere.",
    "A simple homemade loaf needs only four ingredients and a few hours of rising.",
]


def rerank(server: HearthServer, path: str = "/v1/rerank", **body: Any) -> httpx.Response:
    """POST a rerank request with defaults for what `body` leaves out."""
    request = {"model": EMBEDDING_MODEL, "query": QUERY, "documents": DOCUMENTS, **body}
    return httpx.post(f"{server.base_url}{path}", json=request, timeout=60)


def test_ordering_sanity(embedding_server: HearthServer) -> None:
    """The two bread documents rank first, scores descend, and every document comes back once."""
    response = rerank(embedding_server)
    assert response.status_code == 200, response.text[:300]
    body = response.json()
    assert body["model"] == EMBEDDING_MODEL and body["id"]
    results = body["results"]
    assert sorted(r["index"] for r in results) == list(range(len(DOCUMENTS)))
    assert {r["index"] for r in results[:2]} == {1, 3}
    scores = [r["relevance_score"] for r in results]
    assert scores == sorted(scores, reverse=True)
    assert all(-1.0 <= s <= 1.0 for s in scores)
    assert scores[1] - scores[2] > 0.2
    assert all(r["document"] == {"text": DOCUMENTS[r["index"]]} for r in results)
    usage = body["usage"]
    assert usage["prompt_tokens"] == usage["total_tokens"] > len(DOCUMENTS) * 3


def test_top_n_objects_aliases_and_no_documents(embedding_server: HearthServer) -> None:
    """top_n cuts the list; Cohere-style document objects score the same as strings; /rerank and
    /v2/rerank are the same endpoint; return_documents=false leaves the text out."""
    full = rerank(embedding_server).json()["results"]
    top = rerank(embedding_server, top_n=2).json()["results"]
    assert top == full[:2]
    as_objects = rerank(embedding_server, path="/rerank", documents=[{"text": d} for d in DOCUMENTS], top_n=2)
    assert as_objects.status_code == 200
    assert as_objects.json()["results"] == top
    bare = rerank(embedding_server, path="/v2/rerank", return_documents=False).json()["results"]
    assert [(r["index"], r["relevance_score"]) for r in bare] == [(r["index"], r["relevance_score"]) for r in full]
    assert all("document" not in r for r in bare)


@pytest.mark.parametrize(
    ("body", "status", "param"),
    [
        ({"documents": []}, 400, "documents"),
        ({"documents": ["fine", ""]}, 400, "documents"),
        ({"query": ""}, 400, "query"),
        ({"top_n": 0}, 400, "top_n"),
        ({"documents": ["fine", "word " * 400]}, 400, "documents"),
        ({"model": "smollm2-135m-instruct"}, 400, "model"),
        ({"model": "no-such-model"}, 404, "model"),
    ],
)
def test_refusals(embedding_server: HearthServer, body: dict[str, Any], status: int, param: str) -> None:
    """Bad input and wrong models are clear 4xx errors in OpenAI's shape."""
    response = rerank(embedding_server, **body)
    assert response.status_code == status, response.text[:300]
    error = response.json()["error"]
    assert error["param"] == param
    assert error["message"]
    if error.get("code") == "context_length_exceeded":
        assert "documents[1]" in error["message"] and "256" in error["message"]
