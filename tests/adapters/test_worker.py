"""The worker process boundary: start-up failures, streaming, and a crash contained."""

from __future__ import annotations

import asyncio
import os
import signal
from pathlib import Path

import pytest

from adapters.base import ChatMessage, EngineOptions, EngineStartError, GenerationRequest, SamplingParams
from adapters.chat_engine import ChatEngine
from hub.models import DEFAULT_MODEL_ID, ModelSpec, resolve_model


def test_start_failure_names_the_problem(tmp_path: Path) -> None:
    broken = tmp_path / "broken.gguf"
    broken.write_bytes(b"GGUF" + b"\0" * 64)
    spec = ModelSpec(id="broken", path=str(broken), format="gguf")
    with pytest.raises(EngineStartError, match="cannot load broken"):
        asyncio.run(ChatEngine.start(spec, EngineOptions()))


def test_stream_then_crash_is_contained() -> None:
    async def run() -> None:
        engine = await ChatEngine.start(resolve_model(DEFAULT_MODEL_ID, None), EngineOptions(context_length=2048))
        try:
            short = GenerationRequest(
                request_id=engine.next_request_id(),
                messages=(ChatMessage("user", "Hi"),),
                params=SamplingParams(max_tokens=5, temperature=0, ignore_eos=True),
            )
            deltas = [d async for d in engine.generate(short)]
            assert sum(d.tokens for d in deltas) == 5 and deltas[-1].finish_reason == "length"

            long = GenerationRequest(
                request_id=engine.next_request_id(),
                prompt="Once upon a time",
                params=SamplingParams(max_tokens=1500, ignore_eos=True),
            )
            stream = engine.generate(long)
            first = await anext(stream)
            assert first.error is None
            assert engine.pid is not None
            os.kill(engine.pid, signal.SIGKILL)
            rest = [d async for d in stream]
            assert rest[-1].error is not None and rest[-1].error.code == "engine_unavailable"
            assert not engine.alive
            after = [d async for d in engine.generate(short)]
            assert after[0].error is not None and after[0].error.code == "engine_unavailable"
        finally:
            await engine.close()

    asyncio.run(asyncio.wait_for(run(), 120))
