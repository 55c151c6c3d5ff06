"""GET /v1/models and /v1/models/{model}: every service, loaded or not."""

from __future__ import annotations

from litestar import Router, get

from server.openapi import NOT_FOUND
from server.protocol import ModelCard, ModelList
from server.scheduler import Scheduler


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


@get("/models", summary="List models")
async def list_models(scheduler: Scheduler) -> ModelList:
    """Every model (service) served here, with its effective context length."""
    return ModelList(data=[_card(scheduler, name) for name in scheduler.names()])


@get("/models/{model:path}", summary="Retrieve a model", responses=NOT_FOUND)
async def retrieve_model(scheduler: Scheduler, model: str) -> ModelCard:
    """One model by id (ids may contain slashes, as Hugging Face names do)."""
    return _card(scheduler, model.lstrip("/"))


router = Router(path="/v1", route_handlers=[list_models, retrieve_model], tags=["models"])
