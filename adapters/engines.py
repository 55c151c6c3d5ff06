"""Starting an engine of either kind: what the server's engine factory calls."""

from __future__ import annotations

from adapters.base import EmbeddingSpec, EngineOptions, RunnerExitHook
from adapters.chat_engine import ChatEngine
from adapters.embedding_engine import EmbeddingEngine
from adapters.sandbox import Confinement
from hub.models import ModelSpec


async def start_engine(
    spec: ModelSpec,
    options: EngineOptions,
    confinement: Confinement | None = None,
    on_exit: RunnerExitHook | None = None,
) -> ChatEngine | EmbeddingEngine:
    """A worker process serving `spec`: an embedding engine for an `EmbeddingSpec`, else a text
    generation engine; confined as `confinement` says (by default fully), and `on_exit` is told
    if it stops unasked."""
    if isinstance(spec, EmbeddingSpec):
        return await EmbeddingEngine.start(spec, options, confinement=confinement, on_exit=on_exit)
    return await ChatEngine.start(spec, options, confinement=confinement, on_exit=on_exit)
