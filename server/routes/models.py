"""GET /v1/models and /v1/models/{model}."""

from __future__ import annotations

from litestar import Router, get

from server.engines import EngineRegistry
from server.openapi import NOT_FOUND
from server.protocol import ModelCard, ModelList


@get("/models", summary="List models")
async def list_models(engines: EngineRegistry) -> ModelList:
    """Every model served here, with its effective context length."""
    return ModelList(data=engines.cards())


@get("/models/{model:path}", summary="Retrieve a model", responses=NOT_FOUND)
async def retrieve_model(engines: EngineRegistry, model: str) -> ModelCard:
    """One model by id (ids may contain slashes, as Hugging Face names do)."""
    return engines.card(model.lstrip("/"))


router = Router(path="/v1", route_handlers=[list_models, retrieve_model], tags=["models"])
