"""The embedding models this server serves, each in its own worker process.

Owned by the app's lifespan beside the chat `EngineRegistry`. A chat model asked for embeddings
(and an embedding model asked for chat) gets a 400 that names the right endpoint.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from adapters.embedding_worker import EmbeddingWorker
from adapters.embeddings import EmbeddingSpec, EmbedResult
from adapters.worker import EngineStartError
from hub.models import ModelNotFound
from hub.store import ArtifactStore
from server.http.errors import APIError, from_engine_error, invalid_request, model_not_found
from server.inference.protocol import ModelCard

log = logging.getLogger(__name__)


def resolve_embedding_model(
    model_id: str, path: str | None, store: ArtifactStore | None = None
) -> EmbeddingSpec | None:
    """The embedding model to serve: the folder at `path`, else the installed hub artifact named
    `model_id` (`hearth pull all-minilm-l6-v2` makes the default one); None when neither exists."""
    if not path:
        if store is None or not store.exists(model_id):
            return None
        manifest = store.get(model_id)
        if manifest.task != "embeddings" or manifest.format != "openvino":
            log.warning("the artifact %s is not an OpenVINO embedding model; not serving it for embeddings", model_id)
            return None
        path = str(store.entry_path(model_id))
    folder = Path(path).expanduser()
    if not (folder / "openvino_model.xml").is_file():
        raise ModelNotFound(f"embedding model path {folder} is not an OpenVINO model folder (no openvino_model.xml)")
    return EmbeddingSpec(id=model_id, path=str(folder))


@dataclass
class _Served:
    worker: EmbeddingWorker
    spec: EmbeddingSpec
    device: str
    created: int = field(default_factory=lambda: int(time.time()))
    restart_lock: asyncio.Lock = field(default_factory=asyncio.Lock)


class EmbedderRegistry:
    """Model id -> running embedding worker."""

    def __init__(self) -> None:
        self._served: dict[str, _Served] = {}
        # Ids served by the chat endpoints, to tell a client it used the wrong endpoint.
        self._chat_models: set[str] = set()

    def note_chat_models(self, model_ids: list[str]) -> None:
        """Remember which ids are chat models (they get a clear 400 here, not a 404)."""
        self._chat_models.update(model_ids)

    async def start(self, spec: EmbeddingSpec, device: str = "CPU") -> None:
        """Load `spec` in a new worker and serve it under `spec.id`."""
        worker = await EmbeddingWorker.start(spec, device)
        self._served[spec.id] = _Served(worker, spec, device)

    @property
    def model_ids(self) -> list[str]:
        """Every embedding model served."""
        return list(self._served)

    def _get(self, model_id: str) -> _Served:
        served = self._served.get(model_id)
        if served is not None:
            return served
        if model_id in self._chat_models:
            available = ", ".join(self._served) or "none is loaded"
            raise invalid_request(
                f"The model `{model_id}` is a chat model and cannot create embeddings; "
                f"use an embedding model ({available}).",
                param="model",
                code="model_not_supported",
            )
        raise model_not_found(model_id)

    async def acquire(self, model_id: str) -> EmbeddingWorker:
        """The worker serving `model_id`; a worker that died is started again first."""
        served = self._get(model_id)
        if served.worker.alive:
            return served.worker
        async with served.restart_lock:
            if not served.worker.alive:
                log.warning("the embedding worker for %s is down; starting it again", model_id)
                await served.worker.close()
                try:
                    served.worker = await EmbeddingWorker.start(served.spec, served.device)
                except EngineStartError as exc:
                    log.error("cannot restart %s: %s", model_id, exc)
                    raise APIError(
                        503,
                        f"The model `{model_id}` is not available right now.",
                        type="server_error",
                        code="model_unavailable",
                    ) from exc
            return served.worker

    async def embed(
        self, model_id: str, texts: list[str], param: str = "input", name: Callable[[int], str] | None = None
    ) -> EmbedResult:
        """Embed `texts` with `model_id`; an engine failure raises its API error. `name(i)` is what
        the API calls text `i` (default `input[i]`), for the message about an input that is too long."""
        worker = await self.acquire(model_id)
        result = await worker.embed(texts)
        error = result.error
        if error is not None and error.code == "context_length_exceeded" and result.token_counts:
            limit = worker.info.max_tokens
            i = next(i for i, n in enumerate(result.token_counts) if n > limit)
            what = name(i) if name is not None else f"input[{i}]"
            message = (
                f"This model's maximum input length is {limit} tokens, however {what} has "
                f"{result.token_counts[i]} tokens. Please reduce the length of the input."
            )
            raise APIError(400, message, param=param, code="context_length_exceeded")
        if error is not None:
            raise from_engine_error(error, param)
        return result

    def dimensions(self, model_id: str) -> int:
        """Length of `model_id`'s vectors."""
        return self._get(model_id).worker.info.dimensions

    def card(self, model_id: str) -> ModelCard:
        """The /v1/models entry of `model_id`."""
        served = self._get(model_id)
        limit = served.worker.info.max_tokens
        return ModelCard(
            id=model_id,
            created=served.created,
            owned_by=served.spec.owned_by,
            context_length=limit,
            max_model_len=limit,
        )

    def cards(self) -> list[ModelCard]:
        """Every embedding model served."""
        return [self.card(model_id) for model_id in self._served]

    def status(self) -> dict[str, bool]:
        """Model id -> whether its worker is up."""
        return {model_id: served.worker.alive for model_id, served in self._served.items()}

    async def close(self) -> None:
        """Stop every worker."""
        await asyncio.gather(*(s.worker.close() for s in self._served.values()), return_exceptions=True)
        self._served.clear()
