"""The messages between the server and a model worker, as msgspec tagged unions.

The server sends one `Load` (which says what to build: a text generation backend or an embedding
model), then `Command`s; the worker answers `Ready` or `Fatal`, then `Event`s. Both sides decode
into the union and dispatch with `match`, so a message type is one class, not a string to compare.
"""

from __future__ import annotations

import msgspec

from adapters.base import (
    Delta,
    EmbeddingSpec,
    EmbedRequest,
    EmbedResult,
    EngineOptions,
    GenerationRequest,
    ModelInfo,
    Tokenize,
    Tokens,
)
from adapters.sandbox import Confinement
from hub.models import ModelSpec


class LoadChat(msgspec.Struct, tag=True):
    """Build the text generation backend of `spec`."""

    spec: ModelSpec
    options: EngineOptions
    confinement: Confinement = Confinement()


class LoadEmbeddings(msgspec.Struct, tag=True):
    """Build the embedding model of `spec` on `options.device`."""

    spec: EmbeddingSpec
    options: EngineOptions
    confinement: Confinement = Confinement()


class Submit(msgspec.Struct, tag=True):
    """Start generating for `request`."""

    request: GenerationRequest


class Cancel(msgspec.Struct, tag=True):
    """Stop a generation early."""

    request_id: int


class Embed(msgspec.Struct, tag=True):
    """Embed the texts of one API call."""

    request: EmbedRequest


class Shutdown(msgspec.Struct, tag=True):
    """Release the model and exit."""


class Ready(msgspec.Struct, tag=True):
    """The model is loaded."""

    info: ModelInfo


class Fatal(msgspec.Struct, tag=True):
    """The model could not be loaded."""

    message: str


class Deltas(msgspec.Struct, tag=True):
    """What one batch step (or a refused submit) produced."""

    deltas: list[Delta]


class Results(msgspec.Struct, tag=True):
    """The answers to the `Embed`s the worker took in one batch."""

    results: list[EmbedResult]


Load = LoadChat | LoadEmbeddings
Command = Submit | Cancel | Embed | Tokenize | Shutdown
Event = Ready | Fatal | Deltas | Results | Tokens
