"""EngineRegistry: unknown models, and a crashed worker started again on next use."""

from __future__ import annotations

import asyncio
import os
import signal

import pytest

from adapters.base import EngineOptions, GenerationRequest, SamplingParams
from hub.models import DEFAULT_MODEL_ID, resolve_model
from server.engines import EngineRegistry
from server.errors import APIError


def test_unknown_model_is_404() -> None:
    async def run() -> None:
        await EngineRegistry().acquire("nope")

    with pytest.raises(APIError) as info:
        asyncio.run(run())
    assert (info.value.status, info.value.detail.code) == (404, "model_not_found")


def test_crashed_worker_is_restarted_on_next_use() -> None:
    async def run() -> None:
        registry = EngineRegistry()
        try:
            first = await registry.start(resolve_model(DEFAULT_MODEL_ID, None), EngineOptions(context_length=512))
            assert first.pid is not None
            os.kill(first.pid, signal.SIGKILL)
            for _ in range(100):
                if not first.alive:
                    break
                await asyncio.sleep(0.05)
            assert registry.status() == {DEFAULT_MODEL_ID: False}
            second = await registry.acquire(DEFAULT_MODEL_ID)
            assert second.alive and second.pid != first.pid
            request = GenerationRequest(
                request_id=second.next_request_id(),
                prompt="Hello",
                params=SamplingParams(max_tokens=3, temperature=0, ignore_eos=True),
            )
            deltas = [d async for d in second.generate(request)]
            assert sum(d.tokens for d in deltas) == 3
            assert registry.status() == {DEFAULT_MODEL_ID: True}
            assert registry.card(DEFAULT_MODEL_ID).context_length == 512
        finally:
            await registry.close()

    asyncio.run(asyncio.wait_for(run(), 120))
