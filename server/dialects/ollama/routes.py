"""Ollama's inference and model endpoints under /api, through the same engine door as OpenAI's.

Thin: decode (protocol.py), translate (translate.py), the door, then output.py's lines. Errors
leave in Ollama's shape (errors.py, this router's handlers).
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

from litestar import Request, get, head, post

from server.dialects.ollama import models
from server.dialects.ollama import protocol as o
from server.dialects.ollama.errors import bad_request
from server.dialects.ollama.output import (
    Answer,
    LineStream,
    Timer,
    ndjson,
    now,
    to_chat_chunks,
    to_chat_response,
    to_generate_chunks,
    to_generate_response,
)
from server.dialects.ollama.translate import from_chat_request, from_generate_request, model_name, wants_thinking
from server.inference.call import EngineDoor, keep_alive_seconds
from server.inference.chat.output import ChoiceOutput
from server.routes.hub import HubState
from server.serving.scheduler import Scheduler
from server.settings import OllamaSettings


@get("/version", summary="Ollama's version probe")
async def version(ollama: OllamaSettings) -> o.VersionResponse:
    """The Ollama version whose API this server speaks (clients enable features by it)."""
    return o.VersionResponse(version=ollama.ollama_version)


@head("/version", summary="Ollama's liveness probe")
async def version_probe() -> None:
    """200 while the server runs: what Ollama clients probe (`HEAD /` is the web console's)."""


@get("/tags", summary="List models (Ollama)")
async def tags(scheduler: Scheduler, hub: HubState) -> o.TagsResponse:
    """Every model served here, then every installed artifact."""

    def read() -> list[o.ListedModel]:
        names = scheduler.names()
        served = [models.listed(name, models.deployment_files(scheduler.deployment(name))) for name in names]
        return served + models.installed(hub.store, set(names))

    return o.TagsResponse(models=await asyncio.to_thread(read))


@post("/show", summary="Show a model (Ollama)", status_code=200)
async def show(data: o.ModelRequest, scheduler: Scheduler) -> o.ShowResponse:
    """A model's details, metadata, template, parameters and capabilities."""
    name = model_name(data.model_name)
    if not name:
        raise bad_request("model is required")
    deployment = scheduler.deployment(name)
    files = await asyncio.to_thread(models.deployment_files, deployment)
    return models.show(name, deployment, files)


@get("/ps", summary="List loaded models (Ollama)")
async def ps(scheduler: Scheduler) -> o.PsResponse:
    """The models loaded now, their memory and when they will be unloaded."""
    loaded = [m for m in scheduler.status().models if m.state in ("loading", "loaded")]

    def read() -> list[o.RunningModel]:
        lines: list[o.RunningModel] = []
        for status in loaded:
            deployment = scheduler.deployment(status.id)
            lines.append(models.running(status, deployment, models.deployment_files(deployment)))
        return lines

    return o.PsResponse(models=await asyncio.to_thread(read))


async def _hold(door: EngineDoor, name: str, keep_alive: o.Duration | None, request: Request[Any, Any, Any]) -> str:
    """Ollama's load (an empty request) and unload (the same with keep_alive 0); the done_reason."""
    await door.hold(name, request=request, keep_alive=keep_alive)
    return "unload" if keep_alive_seconds(keep_alive) == 0 else "load"


@post("/chat", summary="Chat (Ollama)", status_code=200)
async def chat(data: o.ChatRequest, request: Request[Any, Any, Any], door: EngineDoor) -> o.ChatResponse | LineStream:
    """The assistant's next message, streamed as NDJSON lines unless `stream` is false."""
    timer = Timer()
    name = model_name(data.model)
    defaults = door.defaults(name, request)
    if not data.messages:
        reason = await _hold(door, name, data.keep_alive, request)
        message = o.MessageOut(role="assistant", content="")
        return o.ChatResponse(model=data.model, created_at=now(), message=message, done=True, done_reason=reason)
    engine_request = from_chat_request(data, defaults)
    call = await door.generate(name, [engine_request], request=request, keep_alive=data.keep_alive, prefix="ollama")
    timer.admitted()
    tools = engine_request.constraint is not None and bool(engine_request.constraint.tags)
    output = ChoiceOutput(tools=tools, reasoning=call.info.reasoning)
    answer = Answer(data.model, timer, output, wants_thinking(data.think))
    if data.stream:
        return LineStream(ndjson(to_chat_chunks(call, answer), call))
    return await call.whole(to_chat_response(call, answer))


@post("/generate", summary="Generate (Ollama)", status_code=200)
async def generate(
    data: o.GenerateRequest, request: Request[Any, Any, Any], door: EngineDoor
) -> o.GenerateResponse | LineStream:
    """A completion of `prompt`, streamed as NDJSON lines unless `stream` is false."""
    timer = Timer()
    name = model_name(data.model)
    defaults = door.defaults(name, request)
    if not data.prompt and not data.images:
        reason = await _hold(door, name, data.keep_alive, request)
        return o.GenerateResponse(model=data.model, created_at=now(), response="", done=True, done_reason=reason)
    engine_request = from_generate_request(data, defaults)
    call = await door.generate(
        name, [engine_request], request=request, keep_alive=data.keep_alive, prompt_param="prompt", prefix="ollama"
    )
    timer.admitted()
    output = ChoiceOutput(reasoning=call.info.reasoning and not data.raw)
    answer = Answer(data.model, timer, output, wants_thinking(data.think))
    if data.stream:
        return LineStream(ndjson(to_generate_chunks(call, answer), call))
    return await call.whole(to_generate_response(call, answer))


@post("/embed", summary="Embed (Ollama)", status_code=200)
async def embed(data: o.EmbedRequest, request: Request[Any, Any, Any], door: EngineDoor) -> o.EmbedResponse:
    """One vector per input; all of a call's inputs go to the engine together."""
    started = time.perf_counter()
    texts = [data.input] if isinstance(data.input, str) else data.input
    if not texts:
        raise bad_request("input must not be empty")
    for i, text in enumerate(texts):
        if not text:
            raise bad_request(f"input[{i}] is empty; every input must have text")
    name = model_name(data.model)
    result = await door.embed(name, texts, request=request, dimensions=data.dimensions)
    return o.EmbedResponse(
        model=data.model,
        embeddings=[row.tolist() for row in result.vectors],
        total_duration=int((time.perf_counter() - started) * 1e9),
        load_duration=0,
        prompt_eval_count=sum(result.token_counts),
    )


@post("/embeddings", summary="Embed one text (Ollama, older form)", status_code=200)
async def embeddings(
    data: o.EmbeddingsRequest, request: Request[Any, Any, Any], door: EngineDoor
) -> o.EmbeddingsResponse:
    """The vector of `prompt` (an empty prompt has an empty vector, as Ollama answers)."""
    name = model_name(data.model)
    if not data.prompt:
        door.defaults(name, request)  # an unknown model is still a 404
        return o.EmbeddingsResponse(embedding=[])
    result = await door.embed(name, [data.prompt], request=request, param="prompt")
    return o.EmbeddingsResponse(embedding=result.vectors[0].tolist())


HANDLERS = [version, version_probe, tags, show, ps, chat, generate, embed, embeddings]
