"""GET /v1/models and /v1/models/{model}."""

from __future__ import annotations

import asyncio

from litestar import Router, get

from hub.manifest import SERVABLE_FORMATS
from hub.models import artifact_context_length
from server.engines import EngineRegistry
from server.errors import APIError
from server.openapi import NOT_FOUND
from server.protocol import ModelCard, ModelList
from server.routes.hub import HubState


def _installed_cards(hub: HubState, served: set[str]) -> list[ModelCard]:
    """Installed hub artifacts that are not being served: servable with `hearth serve --model NAME`."""
    cards: list[ModelCard] = []
    for manifest in hub.store.artifacts():
        if manifest.name in served or manifest.format not in SERVABLE_FORMATS:
            continue
        context = artifact_context_length(hub.store, manifest)
        cards.append(
            ModelCard(
                id=manifest.name,
                created=int(manifest.created),
                owned_by="hearth",
                context_length=context,
                max_model_len=context,
            )
        )
    return cards


@get("/models", summary="List models")
async def list_models(engines: EngineRegistry, hub: HubState) -> ModelList:
    """Every model served here, with its effective context length, then every installed artifact."""
    served = engines.cards()
    installed = await asyncio.to_thread(_installed_cards, hub, {card.id for card in served})
    return ModelList(data=served + installed)


@get("/models/{model:path}", summary="Retrieve a model", responses=NOT_FOUND)
async def retrieve_model(engines: EngineRegistry, hub: HubState, model: str) -> ModelCard:
    """One model by id (ids may contain slashes, as Hugging Face names do)."""
    model_id = model.lstrip("/")
    try:
        return engines.card(model_id)
    except APIError:
        cards = await asyncio.to_thread(_installed_cards, hub, set())
        for card in cards:
            if card.id == model_id:
                return card
        raise


router = Router(path="/v1", route_handlers=[list_models, retrieve_model], tags=["models"])
