"""From an embedding engine's answer to what the embeddings and rerank endpoints send.

An engine error becomes its API error here, with the input that was too long named as the caller's
API names it (`input[i]`, `documents[i]`, `query`, a workflow step's `with.texts`).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from adapters.base import EmbedResult, ModelInfo
from server.http.errors import APIError, from_engine_error, invalid_request

# What the API calls input `i` of a call (default: `input[i]`).
InputName = Callable[[int], str]


@dataclass(frozen=True)
class Embedded:
    """The vectors of one call, an (inputs x dimensions) float32 array, and each input's tokens."""

    vectors: np.ndarray[Any, np.dtype[np.float32]]
    token_counts: tuple[int, ...]


def check_dimensions(model: str, size: int, asked: int | None) -> None:
    """A 400 when the client asks for vectors of another length than the model's `size` (0:
    unknown yet, checked again once the model is loaded)."""
    if asked is not None and size and asked != size:
        raise invalid_request(
            f"The model `{model}` makes {size}-dimensional vectors and cannot shorten them "
            f"(dimensions={asked}); leave dimensions out or set it to {size}.",
            param="dimensions",
        )


def to_embedded(result: EmbedResult, info: ModelInfo, param: str, name: InputName | None) -> Embedded:
    """The vectors of `result`, or the API error of its engine error."""
    error = result.error
    limit = info.context_length
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
    return Embedded(result.matrix(info.dimensions), result.token_counts)
