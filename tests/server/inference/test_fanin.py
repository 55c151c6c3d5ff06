"""FanIn with a scripted fake engine: merging, refusals before streaming, cancellation."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest

from adapters.base import Delta, EngineError, GenerationRequest, ModelInfo, SamplingParams
from server.http.errors import APIError
from server.inference.fanin import FanIn


class ScriptedEngine:
    """Yields a fixed script of (delay, delta) per request; records which requests were closed early."""

    def __init__(self, scripts: dict[int, list[tuple[float, Delta]]]) -> None:
        self.info = ModelInfo(model_id="fake", backend="fake", device="none", context_length=16)
        self.scripts = scripts
        self.cancelled: list[int] = []
        self.alive = True

    def next_request_id(self) -> int:
        return 0

    async def generate(self, request: GenerationRequest) -> AsyncIterator[Delta]:
        finished = False
        try:
            for delay, delta in self.scripts[request.request_id]:
                await asyncio.sleep(delay)
                yield delta
            finished = True
        finally:
            if not finished:
                self.cancelled.append(request.request_id)

    async def close(self) -> None:
        return None


def _request(rid: int) -> GenerationRequest:
    return GenerationRequest(request_id=rid, params=SamplingParams(), prompt="x")


async def _drain(fan: FanIn) -> list[tuple[int, Delta]]:
    return [item async for item in fan]


def test_merges_choices_in_arrival_order() -> None:
    engine = ScriptedEngine(
        {
            1: [
                (0.0, Delta(request_id=1, text="a", prompt_tokens=2)),
                (0.03, Delta(request_id=1, text="b", finish_reason="stop")),
            ],
            2: [
                (0.01, Delta(request_id=2, text="x", prompt_tokens=2)),
                (0.0, Delta(request_id=2, finish_reason="length")),
            ],
        }
    )

    async def run() -> list[tuple[int, str]]:
        fan = FanIn(engine, [_request(1), _request(2)])
        await fan.start()
        items = await _drain(fan)
        await fan.close()
        return [(i, d.text or str(d.finish_reason)) for i, d in items]

    assert asyncio.run(run()) == [(0, "a"), (1, "x"), (1, "length"), (0, "b")]
    assert engine.cancelled == []


def test_refusal_before_first_token_raises_and_cancels_the_rest() -> None:
    engine = ScriptedEngine(
        {
            1: [(0.0, Delta(request_id=1, text="a")), (1.0, Delta(request_id=1, finish_reason="stop"))],
            2: [(0.01, Delta(request_id=2, error=EngineError("context_length_exceeded", "too long")))],
        }
    )

    async def run() -> None:
        fan = FanIn(engine, [_request(1), _request(2)], prompt_param="prompt")
        await fan.start()

    with pytest.raises(APIError) as info:
        asyncio.run(run())
    assert info.value.detail.code == "context_length_exceeded"
    assert info.value.detail.param == "prompt"
    assert engine.cancelled == [1]


def test_close_mid_stream_cancels_running_requests() -> None:
    engine = ScriptedEngine(
        {
            1: [(0.0, Delta(request_id=1, text=str(i))) for i in range(3)]
            + [(10.0, Delta(request_id=1, finish_reason="stop"))]
        }
    )

    async def run() -> list[str]:
        fan = FanIn(engine, [_request(1)])
        await fan.start()
        seen: list[str] = []
        async for _, delta in fan:
            seen.append(delta.text)
            if len(seen) == 3:
                break
        await fan.close()
        return seen

    assert asyncio.run(run()) == ["0", "1", "2"]
    assert engine.cancelled == [1]


def test_stop_cancels_one_choice_and_drops_its_later_deltas() -> None:
    engine = ScriptedEngine(
        {
            1: [(0.0, Delta(request_id=1, text="a", prompt_tokens=2))]
            + [(0.01, Delta(request_id=1, text=str(i))) for i in range(50)]
            + [(0.0, Delta(request_id=1, finish_reason="length"))],
            2: [
                (0.0, Delta(request_id=2, text="x", prompt_tokens=2)),
                (0.05, Delta(request_id=2, text="y")),
                (0.0, Delta(request_id=2, finish_reason="stop")),
            ],
        }
    )

    async def run() -> list[tuple[int, str]]:
        fan = FanIn(engine, [_request(1), _request(2)])
        await fan.start()
        seen: list[tuple[int, str]] = []
        async for index, delta in fan:
            seen.append((index, delta.text or str(delta.finish_reason)))
            if (index, delta.text) == (0, "a"):
                await fan.stop(0)
        await fan.close()
        return seen

    # Choice 0 ends at its first delta; choice 1 runs to its end and the stream then ends.
    assert asyncio.run(run()) == [(0, "a"), (1, "x"), (1, "y"), (1, "stop")]
    assert engine.cancelled == [1]


class UnsendableEngine(ScriptedEngine):
    """Fails to send its request, as an int past 64 bits once failed to encode for the worker."""

    async def generate(self, request: GenerationRequest) -> AsyncIterator[Delta]:
        raise OverflowError("can't serialize ints > 2**64 - 1")
        yield Delta(request_id=request.request_id)  # pragma: no cover - makes this a generator


def test_a_request_that_never_reaches_the_engine_ends_the_call() -> None:
    """`start()` once waited forever for such a request's first delta (its slot never freed)."""

    async def scenario() -> None:
        fan = FanIn(UnsendableEngine({}), [_request(1)])
        with pytest.raises(APIError) as raised:
            await asyncio.wait_for(fan.start(), timeout=5)
        assert raised.value.status == 500

    asyncio.run(scenario())
