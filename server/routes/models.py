"""GET /v1/models and /v1/models/{model}."""

from __future__ import annotations

from litestar import Router, get

from server.embedders import EmbedderRegistry
from server.engines import EngineRegistry
from server.openapi import NOT_FOUND
from server.protocol import ModelCard, ModelList


@get("/models", summary="List models")
async def list_models(engines: EngineRegistry, embedders: EmbedderRegistry) -> ModelList:
    """Every model served here, with its effective context length."""
    return ModelList(data=engines.cards() + embedders.cards())


@get("/models/{model:path}", summary="Retrieve a model", responses=NOT_FOUND)
async def retrieve_model(engines: EngineRegistry, embedders: EmbedderRegistry, model: str) -> ModelCard:
    """One model by id (ids may contain slashes, as Hugging Face names do)."""
    model_id = model.lstrip("/")
    return embedders.card(model_id) if model_id in embedders.model_ids else engines.card(model_id)


router = Router(path="/v1", route_handlers=[list_models, retrieve_model], tags=["models"])
