"""One embedding call through the scheduler: acquire a lease on the embedding model, embed, release.

Shared by POST /v1/embeddings, the rerank endpoints and the workflow gateway's `embed`. An engine
error becomes its API error here, with the input that was too long named as the caller's API names
it (`input[i]`, `documents[i]`, ...).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from adapters.base import Embedder
from server.http.errors import APIError, from_engine_error, invalid_request
from server.serving.scheduler import Scheduler


@dataclass(frozen=True)
class Embedded:
    """The vectors of one call, an (inputs x dimensions) float32 array, and each input's tokens."""

    vectors: np.ndarray[Any, np.dtype[np.float32]]
    token_counts: tuple[int, ...]


class Embeddings:
    """The scheduler's embedding models."""

    def __init__(self, scheduler: Scheduler) -> None:
        self._scheduler = scheduler

    @property
    def model_ids(self) -> list[str]:
        """Every embedding model served."""
        return self._scheduler.names_of_kind("embeddings")

    async def embed(
        self,
        model_id: str,
        texts: list[str],
        param: str = "input",
        name: Callable[[int], str] | None = None,
        dimensions: int | None = None,
    ) -> Embedded:
        """Embed `texts` with `model_id` (loading it if needed); an engine failure raises its API
        error. `name(i)` is what the API calls text `i` (default `input[i]`); `dimensions`, when
        given, must be the model's vector length."""
        lease = await self._scheduler.acquire(model_id, kind="embeddings")
        try:
            engine = lease.engine
            if not isinstance(engine, Embedder):
                raise APIError(500, f"The runner of `{model_id}` cannot embed.", type="server_error")
            size = engine.info.dimensions
            if dimensions is not None and dimensions != size:
                raise invalid_request(
                    f"The model `{model_id}` makes {size}-dimensional vectors and cannot shorten them "
                    f"(dimensions={dimensions}); leave dimensions out or set it to {size}.",
                    param="dimensions",
                )
            result = await engine.embed(texts)
            limit = engine.info.context_length
        finally:
            lease.release()
        error = result.error
        if error is not None and error.code == "context_length_exceeded" and result.token_counts:
            i = next(i for i, n in enumerate(result.token_counts) if n > limit)
            what = name(i) if name is not None else f"input[{i}]"
            message = (
                f"This model's maximum input length is {limit} tokens, however {what} has "
                f"{result.token_counts[i]} tokens. Please reduce the length of the input."
            )
            raise APIError(400, message, param=param, code="context_length_exceeded")
        if error is not None:
            raise from_engine_error(error, param)
        return Embedded(result.matrix(size), result.token_counts)
