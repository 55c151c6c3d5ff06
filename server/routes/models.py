"""GET /v1/models: the models served here, then the hub's installed artifacts."""

from __future__ import annotations

import asyncio
from typing import Literal

import msgspec
from litestar import Router, get

from hub.manifest import SERVABLE_FORMATS
from hub.models import artifact_context_length
from server.http.errors import model_not_found
from server.http.openapi import NOT_FOUND
from server.routes.hub import HubState
from server.serving.scheduler import Scheduler


class ModelCard(msgspec.Struct):
    """A model served here. `context_length` (and vLLM's name for it, `max_model_len`) is the
    effective context window: prompt plus completion tokens."""

    id: str
    created: int
    owned_by: str
    context_length: int
    max_model_len: int
    object: Literal["model"] = "model"


class ModelList(msgspec.Struct):
    """GET /v1/models."""

    data: list[ModelCard]
    object: Literal["list"] = "list"


def _card(scheduler: Scheduler, name: str) -> ModelCard:
    deployment = scheduler.deployment(name)
    context = scheduler.context_length(name)
    return ModelCard(
        id=name,
        created=scheduler.created,
        owned_by=deployment.spec.owned_by,
        context_length=context,
        max_model_len=context,
    )


def _installed_cards(hub: HubState, served: set[str]) -> list[ModelCard]:
    """Installed hub artifacts that are not served under their own name."""
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
async def list_models(scheduler: Scheduler, hub: HubState) -> ModelList:
    """Every model served here (services, then the embedding model) with its effective context
    length, then every installed artifact."""
    served = [_card(scheduler, name) for name in scheduler.names()]
    installed = await asyncio.to_thread(_installed_cards, hub, {card.id for card in served})
    return ModelList(data=served + installed)


@get("/models/{model:path}", summary="Retrieve a model", responses=NOT_FOUND)
async def retrieve_model(scheduler: Scheduler, hub: HubState, model: str) -> ModelCard:
    """One model by id (ids may contain slashes, as Hugging Face names do)."""
    model_id = model.lstrip("/")
    if model_id in scheduler.names():
        return _card(scheduler, model_id)
    for card in await asyncio.to_thread(_installed_cards, hub, set()):
        if card.id == model_id:
            return card
    raise model_not_found(model_id)


router = Router(path="/v1", route_handlers=[list_models, retrieve_model], tags=["models"])
