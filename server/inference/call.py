"""The one door to the engine, and the API call it opens.

Every path that runs a model (chat, completions, responses, tokenize/detokenize, embeddings,
rerank, workflow steps) goes through `EngineDoor`, in the same order:

1. the caller validates and translates first (`defaults()` gives the service's sampling defaults
   without a lease), so a request that gets a 400 never waits in a queue, loads or evicts a model;
2. `generate()` / `tokenize()` / `embed()` admit the call at its priority and keep-alive, raced against the
   client's disconnect when there is a client;
3. they submit, stamping the engine's request ids on the translated requests;
4. a `Call` iterates the merged stream (the first error ends it; `FanIn.start()` turns an engine
   refusal into an HTTP error before anything is sent);
5. the lease is released when the call completes, fails or is abandoned, by its `CallObserver`,
   which also times it for the metrics.
"""

from __future__ import annotations

import asyncio
import copy
import time
import uuid
import weakref
from collections.abc import AsyncIterator, Callable, Coroutine
from typing import Any, TypeVar

import msgspec
from litestar import Request

from adapters.base import ChatMessage, Delta, Embedder, EngineKind, GenerationRequest, ModelInfo, Tokenize
from server.http import sse
from server.http.disconnect import unless_disconnected
from server.http.errors import APIError, invalid_request
from server.http.observability import set_model
from server.inference import protocol as p
from server.inference.embeddings.translate import Embedded, InputName, check_dimensions, to_embedded
from server.inference.fanin import FanIn
from server.inference.translate import UsageCounter, require_no_error
from server.serving.metrics import CallObserver, Metrics
from server.serving.scheduler import Lease, Scheduler
from server.serving.services import parse_duration
from server.settings import SamplingDefaults

T = TypeVar("T")
# Fits the requests to the admitted model (e.g. its fill-in-the-middle tokens); may raise a 400.
Prepare = Callable[[ModelInfo, list[GenerationRequest]], list[GenerationRequest]]


class Call:
    """One chat, completion or response call in flight: its identity, its deltas and its end."""

    def __init__(
        self,
        *,
        prefix: str,
        model: str,
        fingerprint: str,
        fan: FanIn,
        info: ModelInfo,
        prompt_of_choice: list[int],
        include_usage: bool,
        observer: CallObserver,
        request: Request[Any, Any, Any] | None,
    ) -> None:
        self.id = f"{prefix}-{uuid.uuid4().hex}"
        self.created = int(time.time())
        self.model = model
        self.fingerprint = fingerprint
        self.fan = fan
        self.info = info
        self.choices = len(prompt_of_choice)
        self.usage = UsageCounter(prompt_of_choice)
        self.include_usage = include_usage
        self._observer = observer
        self._request = request

    def fields(self) -> dict[str, Any]:
        """The fields every response object and chunk of this call repeats."""
        return {"id": self.id, "created": self.created, "model": self.model, "system_fingerprint": self.fingerprint}

    def chunk_fields(self) -> dict[str, Any]:
        """`fields()` plus `usage: null`, which chunks carry when the client asked for usage."""
        return {**self.fields(), "usage": None} if self.include_usage else self.fields()

    async def deltas(self) -> AsyncIterator[tuple[int, Delta]]:
        """Every delta with its choice index, counted; an engine error raises its API error."""
        try:
            async for index, delta in self.fan:
                require_no_error(delta, self.fan.prompt_param)
                self.usage.add(index, delta)
                self._observer.delta(delta)
                yield index, delta
        finally:
            await self.close()

    async def stop(self, index: int) -> None:
        """End choice `index` now (its answer is decided): cancel its engine request, which frees
        its batch slot and KV blocks; the other choices go on."""
        await self.fan.stop(index)

    async def close(self) -> None:
        """Cancel what is still running in the engine and release the call's slot (idempotent)."""
        try:
            await self.fan.close()
        finally:
            self._observer.done()

    async def whole(self, work: Coroutine[Any, Any, T]) -> T:
        """The result of `work` (which reads `deltas()` to the end), cancelled with a 499 if the
        client goes away first: a whole answer has no stream for the server to notice that by."""
        try:
            return await unless_disconnected(self._request, work)
        finally:
            await self.close()


async def event_stream(
    call: Call, chunks: AsyncIterator[object], usage_chunk: Callable[[p.Usage], object]
) -> AsyncIterator[bytes]:
    """SSE bytes for `chunks`, then the usage chunk if asked for, then `[DONE]`; an error after the
    stream started becomes an error event."""
    encoder = sse.EventEncoder()
    try:
        async for chunk in chunks:
            yield encoder.event(chunk)
        if call.include_usage:
            yield encoder.event(usage_chunk(call.usage.usage()))
    except APIError as error:
        yield encoder.error(error)
    finally:
        # `chunks` may be left suspended rather than closed; close the engine requests here too.
        await call.close()
    yield sse.DONE


def keep_alive_seconds(value: float | str | None) -> float | None:
    """A request's `keep_alive` in seconds (None: the service's), or a 400 naming the field."""
    if value is None:
        return None
    try:
        return parse_duration(value)
    except ValueError as exc:
        raise invalid_request(str(exc), param="keep_alive") from None


class Tokenized(msgspec.Struct, frozen=True):
    """What a model's tokenizer answered, and the model's context length."""

    ids: list[int]
    pieces: list[str]
    text: str
    context_length: int


class EngineDoor:
    """The one way from an API call (or a workflow step) to a model's engine, chat or embeddings;
    built once per app, from its scheduler and metrics."""

    def __init__(self, scheduler: Scheduler, metrics: Metrics, fingerprint: str) -> None:
        self.scheduler = scheduler
        self.metrics = metrics
        self._fingerprint = fingerprint
        # Calls in flight, for `interrupt()`; a finished call drops out by itself.
        self._fans: weakref.WeakSet[FanIn] = weakref.WeakSet()
        self._closed_by: Callable[[], APIError] | None = None
        self._priority: int | None = None
        self._derived: list[EngineDoor] = []

    def at_priority(self, priority: int) -> EngineDoor:
        """This door, admitting every call at `priority` whatever the call asks (batch lines); it
        shares the calls in flight, so `interrupt()` ends its calls too."""
        door = copy.copy(self)
        door._priority = priority
        door._derived = []
        self._derived.append(door)
        return door

    def interrupt(self, error: Callable[[], APIError]) -> None:
        """End every call in flight with `error()` (a stream with its error event, a whole answer
        with the error itself) and refuse every call from now on: the server is shutting down."""
        self._closed_by = error
        for door in self._derived:
            door._closed_by = error
        for fan in list(self._fans):
            fan.interrupt(error())

    def defaults(self, model: str, request: Request[Any, Any, Any] | None = None) -> SamplingDefaults:
        """The sampling defaults of the service `model` (404 if none), known without a lease; labels
        `request` with the model first, so that even its 400 is counted under it."""
        if request is not None:
            set_model(request.scope, model)
        return self.scheduler.deployment(model).sampling

    async def generate(
        self,
        model: str,
        requests: list[GenerationRequest],
        *,
        request: Request[Any, Any, Any] | None = None,
        priority: int | None = None,
        keep_alive: float | str | None = None,
        prompt_param: str = "messages",
        prefix: str = "chatcmpl",
        prompt_of_choice: list[int] | None = None,
        include_usage: bool = False,
        prepare: Prepare | None = None,
    ) -> Call:
        """Admit, submit and start the translated `requests` (one per choice) on `model`.

        Returns once every request has its first delta, so that a refusal (context too long, a bad
        template) raises its API error (naming `prompt_param`) instead of breaking a stream.
        """
        lease, observer = await self._admit(model, request, priority, keep_alive)
        try:
            engine = lease.engine
            if prepare is not None:
                requests = prepare(engine.info, requests)
            stamped = [msgspec.structs.replace(r, request_id=engine.next_request_id()) for r in requests]
            fan = FanIn(engine, stamped, prompt_param)
            self._fans.add(fan)
            await fan.start()
        except BaseException:
            observer.done()
            raise
        return Call(
            prefix=prefix,
            model=model,
            fingerprint=self._fingerprint,
            fan=fan,
            info=engine.info,
            prompt_of_choice=prompt_of_choice if prompt_of_choice is not None else [0] * len(requests),
            include_usage=include_usage,
            observer=observer,
            request=request,
        )

    async def tokenize(
        self,
        model: str | None,
        *,
        request: Request[Any, Any, Any] | None = None,
        text: str | None = None,
        messages: tuple[ChatMessage, ...] | None = None,
        ids: list[int] | None = None,
        add_special: bool = True,
        param: str = "content",
    ) -> Tokenized:
        """The token ids of `text` or `messages`, or the text of `ids`, from `model`'s tokenizer (the
        first service when None); a tokenizer error is a 400 naming `param`."""
        if model is None:
            names = self.scheduler.names_of_kind("chat")
            if not names:
                raise invalid_request("No model is served.", param="model")
            model = names[0]
        lease, observer = await self._admit(model, request, None, None)
        try:
            engine = lease.engine
            command = Tokenize(
                request_id=engine.next_request_id(), text=text, messages=messages, add_special=add_special, ids=ids
            )
            tokens = await unless_disconnected(request, engine.tokenize(command))
        finally:
            observer.done()
        if tokens.error is not None:
            verb = "detokenize" if ids is not None else "tokenize"
            raise invalid_request(f"Cannot {verb}: {tokens.error}", param=param)
        return Tokenized(tokens.ids, tokens.pieces, tokens.text, engine.info.context_length)

    async def hold(
        self, model: str, *, request: Request[Any, Any, Any] | None = None, keep_alive: float | str | None = None
    ) -> bool:
        """Load `model` (admitted like any call) and let it go at once, to stay loaded for
        `keep_alive`: Ollama's load request, and with a keep-alive of 0 its unload request, which
        leaves a model that is not loaded alone. Returns whether the model was admitted."""
        kind = self.scheduler.deployment(model).kind
        unload = keep_alive_seconds(keep_alive) == 0
        if unload and not self.scheduler.is_resident(model):
            return False
        _lease, observer = await self._admit(model, request, None, keep_alive, kind)
        observer.done()
        if unload:
            # The release schedules the unload; the client expects it done when answered (and
            # may delete the model next). Another caller may keep it loaded: wait a bounded time.
            # The scheduler has no event per model to wait on; a poll every 50 ms costs nothing.
            deadline = time.monotonic() + self.scheduler.limits.queue_timeout_s
            while self.scheduler.is_resident(model) and time.monotonic() < deadline:  # noqa: ASYNC110
                await asyncio.sleep(0.05)
        return True

    def embedding_models(self) -> list[str]:
        """Every embedding model served."""
        return self.scheduler.names_of_kind("embeddings")

    async def embed(
        self,
        model: str,
        texts: list[str],
        *,
        request: Request[Any, Any, Any] | None = None,
        param: str = "input",
        name: InputName | None = None,
        dimensions: int | None = None,
    ) -> Embedded:
        """The vectors of `texts` from the embedding model `model`, embedded in one engine call; an
        engine failure raises its API error naming `param` (input `i` as `name(i)`). `dimensions`,
        when given, must be the model's vector length: checked before the queue when the model's
        files say it, else once it is loaded."""
        check_dimensions(model, self.scheduler.deployment(model).dimensions, dimensions)
        lease, observer = await self._admit(model, request, None, None, "embeddings")
        try:
            engine = lease.engine
            if not isinstance(engine, Embedder):
                raise APIError(500, f"The runner of `{model}` cannot embed.", type="server_error")
            check_dimensions(model, engine.info.dimensions, dimensions)
            result = await unless_disconnected(request, engine.embed(texts))
            observer.delta(Delta(request_id=0, prompt_tokens=sum(result.token_counts)))
        finally:
            observer.done()
        return to_embedded(result, engine.info, param, name)

    async def _admit(
        self,
        model: str,
        request: Request[Any, Any, Any] | None,
        priority: int | None,
        keep_alive: float | str | None,
        kind: EngineKind = "chat",
    ) -> tuple[Lease, CallObserver]:
        """Wait in `model`'s priority queue for a lease; a client that disconnects while waiting
        leaves the queue at once (499)."""
        if request is not None:
            set_model(request.scope, model)
        keep_alive_s = keep_alive_seconds(keep_alive)
        if self._priority is not None:
            priority = self._priority
        asked_at = time.perf_counter()
        if self._closed_by is not None:
            raise self._closed_by()
        lease = await unless_disconnected(request, self.scheduler.acquire(model, priority, keep_alive_s, kind))
        if self._closed_by is not None:  # admitted while the server began to close
            lease.release()
            raise self._closed_by()
        return lease, self.metrics.observe(model, lease, asked_at)
