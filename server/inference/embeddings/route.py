"""POST /v1/embeddings: one vector per input, as floats or base64 float32."""

from __future__ import annotations

import base64
from typing import Any

import numpy as np
from litestar import Request, Router, post

from server.http.errors import invalid_request
from server.http.openapi import ERRORS
from server.inference.call import EngineDoor
from server.inference.embeddings.protocol import (
    MAX_INPUTS,
    CreateEmbeddingResponse,
    Embedding,
    EmbeddingRequest,
    EmbeddingUsage,
)


def _is_token_ids(value: object) -> bool:
    return (
        isinstance(value, list) and bool(value) and all(isinstance(t, int) and not isinstance(t, bool) for t in value)
    )


def embedding_inputs(body: EmbeddingRequest) -> list[str]:
    """The texts to embed, or a 400 for input this server cannot embed."""
    raw = body.input
    texts = [raw] if isinstance(raw, str) else raw
    if not texts:
        raise invalid_request("input must not be an empty list.", param="input")
    if _is_token_ids(texts) or all(_is_token_ids(x) for x in texts):
        raise invalid_request(
            "Token-id input is not supported for embeddings here; send the text instead.", param="input"
        )
    if not all(isinstance(x, str) for x in texts):
        raise invalid_request(
            "input must be a string, a list of strings, a list of token ids, or a list of lists of token ids.",
            param="input",
        )
    if len(texts) > MAX_INPUTS:
        raise invalid_request(f"At most {MAX_INPUTS} inputs per request, got {len(texts)}.", param="input")
    for i, text in enumerate(texts):
        if not text:
            raise invalid_request(f"input[{i}] is an empty string; every input must have text.", param="input")
    return [str(x) for x in texts]


@post("/embeddings", summary="Create embeddings", status_code=200, responses=ERRORS)
async def create_embeddings(
    data: EmbeddingRequest, request: Request[Any, Any, Any], door: EngineDoor
) -> CreateEmbeddingResponse:
    """Embed one text or a batch of texts; all of a call's inputs go to the engine together."""
    texts = embedding_inputs(data)
    result = await door.embed(data.model, texts, request=request, dimensions=data.dimensions)
    matrix = result.vectors
    data_out: list[Embedding] = []
    for i, row in enumerate(matrix):
        if data.encoding_format == "base64":
            vector: list[float] | str = base64.b64encode(np.ascontiguousarray(row, dtype="<f4").tobytes()).decode()
        else:
            vector = row.tolist()
        data_out.append(Embedding(index=i, embedding=vector))
    tokens = sum(result.token_counts)
    return CreateEmbeddingResponse(
        data=data_out, model=data.model, usage=EmbeddingUsage(prompt_tokens=tokens, total_tokens=tokens)
    )


router = Router(path="/v1", route_handlers=[create_embeddings], tags=["embeddings"])
