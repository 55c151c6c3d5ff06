"""A scripted engine for tests that must control timing: tokens at a fixed pace, no model."""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import AsyncIterator

from adapters.base import Delta, EngineOptions, GenerationRequest, ModelInfo, Tokenize, Tokens
from hub.models import ModelSpec
from server.serving.deployments import Deployment
from server.serving.services import Service
from server.settings import SamplingDefaults


class FakeEngine:
    """Emits `max_tokens` one-token deltas ("x"), one every `token_s` seconds."""

    def __init__(self, spec: ModelSpec, token_s: float, device: str = "CPU") -> None:
        self.info = ModelInfo(model_id=spec.id, backend="fake", device=device, context_length=2048)
        self.token_s = token_s
        self.closed = False
        self.crashed = False
        self.running = 0
        self._ids = itertools.count(1)

    @property
    def pid(self) -> int | None:
        """No process of its own."""
        return None

    @property
    def alive(self) -> bool:
        """Until closed or crashed."""
        return not (self.closed or self.crashed)

    def next_request_id(self) -> int:
        """A fresh request id."""
        return next(self._ids)

    async def generate(self, request: GenerationRequest) -> AsyncIterator[Delta]:
        """`max_tokens` (default 4) tokens at the engine's pace."""
        total = request.params.max_tokens or 4
        self.running += 1
        try:
            for i in range(total):
                await asyncio.sleep(self.token_s)
                last = i == total - 1
                yield Delta(
                    request_id=request.request_id,
                    text="x",
                    tokens=1,
                    prompt_tokens=3 if i == 0 else None,
                    finish_reason="length" if last else None,
                )
        finally:
            self.running -= 1

    async def tokenize(self, command: Tokenize) -> Tokens:
        """The fake has no tokenizer."""
        return Tokens(command.request_id, error="the fake engine has no tokenizer")

    async def close(self) -> None:
        """Release nothing; remember it was closed."""
        self.closed = True


class FakeFactory:
    """An engine factory that records every engine it made."""

    def __init__(self, token_s: float = 0.01, load_s: float = 0.0) -> None:
        self.token_s = token_s
        self.load_s = load_s
        self.made: list[FakeEngine] = []

    async def __call__(self, spec: ModelSpec, options: EngineOptions) -> FakeEngine:
        """Make a fake engine after `load_s` seconds."""
        await asyncio.sleep(self.load_s)
        engine = FakeEngine(spec, self.token_s, options.device)
        self.made.append(engine)
        return engine


def fake_deployment(
    name: str,
    *,
    estimated_bytes: int = 100,
    keep_alive_s: float = 60.0,
    priority: int = 0,
    max_concurrency: int = 0,
    device: str = "CPU",
) -> Deployment:
    """A deployment whose files are never read (the fake engine ignores them)."""
    return Deployment(
        service=Service(name=name, priority=priority),
        spec=ModelSpec(id=name, path=f"/fake/{name}.gguf", format="gguf"),
        options=EngineOptions(device=device),
        sampling=SamplingDefaults(),
        keep_alive_s=keep_alive_s,
        max_concurrency=max_concurrency,
        estimated_bytes=estimated_bytes,
        context_length=2048,
    )
