"""POST /v1/rerank (also /rerank and /v2/rerank): documents ordered by relevance to a query.

No cross-encoder installs from PyPI without downloading weights at run time, so the score is the
cosine similarity of the embedding model's normalized vectors (a bi-encoder): the query and all
documents are embedded in one engine call. Scores lie in [-1, 1], higher is more relevant.
"""

from __future__ import annotations

import uuid
from typing import Any

import numpy as np
from litestar import Request, Router, post

from server.http.errors import invalid_request
from server.http.openapi import ERRORS
from server.inference.call import EngineDoor
from server.inference.embeddings.protocol import (
    EmbeddingUsage,
    RerankDocument,
    RerankRequest,
    RerankResponse,
    RerankResult,
)


@post(["/rerank", "/v1/rerank", "/v2/rerank"], summary="Rerank documents", status_code=200, responses=ERRORS)
async def rerank(data: RerankRequest, request: Request[Any, Any, Any], door: EngineDoor) -> RerankResponse:
    """Score every document against the query and return the `top_n` best, most relevant first."""
    if not data.query:
        raise invalid_request("query must not be empty.", param="query")
    texts = [d if isinstance(d, str) else d.text for d in data.documents]
    for i, text in enumerate(texts):
        if not text:
            raise invalid_request(f"documents[{i}] is empty; every document must have text.", param="documents")
    result = await door.embed(
        data.model,
        [data.query, *texts],
        request=request,
        param="documents",
        name=lambda i: f"documents[{i - 1}]" if i else "query",
    )
    matrix = result.vectors
    scores = matrix[1:] @ matrix[0]
    order = np.argsort(-scores, kind="stable")[: data.top_n or len(texts)]
    results = [
        RerankResult(
            index=int(i),
            relevance_score=float(scores[i]),
            **({"document": RerankDocument(text=texts[i])} if data.return_documents else {}),
        )
        for i in order
    ]
    tokens = sum(result.token_counts)
    return RerankResponse(
        id=f"rerank-{uuid.uuid4().hex}",
        model=data.model,
        results=results,
        usage=EmbeddingUsage(prompt_tokens=tokens, total_tokens=tokens),
    )


router = Router(path="/", route_handlers=[rerank], tags=["rerank"])
