"""Wire Structs of the embeddings and rerank APIs.

/v1/embeddings is OpenAI's; /v1/rerank has no OpenAI counterpart and follows the Jina/Cohere shape
that llama.cpp's and vLLM's servers answer ({model, query, documents, top_n, return_documents} ->
{results: [{index, relevance_score, document}], usage}).
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

import msgspec
from msgspec import UNSET, Meta, UnsetType

from server.limits import ranges

# OpenAI's own limit on inputs per embeddings request.
MAX_INPUTS = 2048

PositiveInt = ranges.TokenCount


class EmbeddingRequest(msgspec.Struct, kw_only=True):
    """POST /v1/embeddings."""

    model: str
    # A string, a list of strings, token ids, or lists of token ids (checked in the route).
    input: str | list[Any]
    encoding_format: Literal["float", "base64"] | None = None
    dimensions: PositiveInt | None = None
    user: str | None = None


class Embedding(msgspec.Struct):
    """One input's vector: floats, or base64 of little-endian float32 with `encoding_format: base64`."""

    index: int
    embedding: list[float] | str
    object: Literal["embedding"] = "embedding"


class EmbeddingUsage(msgspec.Struct):
    """Tokens the inputs took."""

    prompt_tokens: int
    total_tokens: int


class CreateEmbeddingResponse(msgspec.Struct):
    """Response of POST /v1/embeddings."""

    data: list[Embedding]
    model: str
    usage: EmbeddingUsage
    object: Literal["list"] = "list"


class RerankDocument(msgspec.Struct):
    """A document given as an object, as Cohere and Jina clients may send it."""

    text: str


class RerankRequest(msgspec.Struct, kw_only=True):
    """POST /v1/rerank (also /rerank and /v2/rerank)."""

    model: str
    query: str
    documents: Annotated[list[str | RerankDocument], Meta(min_length=1, max_length=MAX_INPUTS)]
    top_n: PositiveInt | None = None
    return_documents: bool = True


class RerankResult(msgspec.Struct):
    """One document's score; `document` is present unless `return_documents` is false."""

    index: int
    relevance_score: float
    document: RerankDocument | UnsetType = UNSET


class RerankResponse(msgspec.Struct):
    """Response of POST /v1/rerank: results ordered by descending relevance."""

    id: str
    model: str
    results: list[RerankResult]
    usage: EmbeddingUsage
