"""The engine door with the scheduler and a fake engine: ids stamped at submit time, the lease
released and the call measured however it ends, and the workflow gateway through the same door."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

import pytest

from adapters.base import GenerationRequest, ModelInfo, SamplingParams
from server.http.errors import APIError
from server.inference.call import EngineDoor
from server.serving.metrics import Metrics
from server.serving.runner import Limits
from server.serving.scheduler import Scheduler
from server.workflows.gateway import SchedulerGateway, StepFailed
from tests.server.fake_engine import FakeFactory, fake_deployment


def run(test: Callable[[EngineDoor, FakeFactory], Awaitable[None]]) -> None:
    """Run `test` with a door over a scheduler of one fake service `a`, one request at a time."""

    async def body() -> None:
        factory = FakeFactory(token_s=0.005)
        scheduler = Scheduler([fake_deployment("a", max_concurrency=1)], Limits(tick_s=0.02), factory)
        await scheduler.start()
        try:
            await test(EngineDoor(scheduler, Metrics(scheduler), "hearth-test"), factory)
        finally:
            await scheduler.close()

    asyncio.run(asyncio.wait_for(body(), 20))


def _active(door: EngineDoor) -> int:
    return door.scheduler.status().models[0].active


def _placeholder(max_tokens: int = 3) -> GenerationRequest:
    return GenerationRequest(request_id=0, params=SamplingParams(max_tokens=max_tokens), prompt="x")


def _sample_count(door: EngineDoor, metric: str) -> float:
    registry = door.metrics.registry
    return registry.get_sample_value(f"{metric}_count", {"model": "a"}) or 0.0


def test_generate_stamps_ids_and_releases_the_lease_when_the_call_ends() -> None:
    async def body(door: EngineDoor, factory: FakeFactory) -> None:
        assert door.defaults("a").temperature == 1.0 and not factory.made  # no lease, no load
        call = await door.generate("a", [_placeholder(), _placeholder()], prefix="cmpl")
        assert _active(door) == 1
        seen = [(index, delta.request_id) async for index, delta in call.deltas()]
        assert {rid for _, rid in seen} == {1, 2}  # the engine's ids, not the placeholders
        assert call.usage.usage().completion_tokens == 6 and call.id.startswith("cmpl-")
        assert _active(door) == 0
        assert _sample_count(door, "hearth_queue_wait_seconds") == 1
        assert _sample_count(door, "hearth_time_per_output_token_seconds") == 1

    run(body)


def test_an_abandoned_call_and_a_refused_prepare_release_their_lease() -> None:
    async def body(door: EngineDoor, factory: FakeFactory) -> None:
        call = await door.generate("a", [_placeholder(max_tokens=1000)])
        async for _ in call.deltas():
            break  # the client went away after one delta
        await call.close()
        assert _active(door) == 0 and factory.made[0].running == 0

        def refuse(info: ModelInfo, requests: list[GenerationRequest]) -> list[GenerationRequest]:
            raise APIError(400, f"{info.model_id} refuses", param="suffix")

        with pytest.raises(APIError):
            await door.generate("a", [_placeholder()], prepare=refuse)
        assert _active(door) == 0

    run(body)


def test_a_bad_keep_alive_is_a_400_before_the_queue() -> None:
    async def body(door: EngineDoor, factory: FakeFactory) -> None:
        holder = await door.generate("a", [_placeholder(max_tokens=1000)])
        with pytest.raises(APIError) as caught:
            await asyncio.wait_for(door.generate("a", [_placeholder()], keep_alive="a while"), 1)
        assert caught.value.status == 400 and caught.value.detail.param == "keep_alive"
        await holder.close()

    run(body)


def test_the_workflow_gateway_goes_through_the_door() -> None:
    async def body(door: EngineDoor, factory: FakeFactory) -> None:
        gateway = SchedulerGateway(door)
        assert gateway.known_models() == {"a"} and gateway.sampling_defaults("nope") is None
        chunks = [chunk async for chunk in gateway.generate("a", _placeholder(), priority=5)]
        assert "".join(c.text for c in chunks) == "xxx" and chunks[0].prompt_tokens == 3
        assert _active(door) == 0 and _sample_count(door, "hearth_queue_wait_seconds") == 1
        with pytest.raises(StepFailed):
            async for _ in gateway.generate("nope", _placeholder()):
                pass

    run(body)
