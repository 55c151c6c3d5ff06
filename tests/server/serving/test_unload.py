"""`Scheduler.unload` (POST /v1/status/unload, `hearth stop`): an idle model unloads at once, a busy
one when its last call ends, and it loads again on its next call."""

from __future__ import annotations

import math

import pytest

from server.http.errors import APIError
from server.serving.runner import Limits
from tests.server.fake_engine import FakeFactory, fake_deployment
from tests.server.serving.test_scheduler import run, scheduled, states, until


def test_an_idle_model_unloads_now_and_loads_again_on_use() -> None:
    async def body() -> None:
        factory = FakeFactory()
        forever = fake_deployment("a", keep_alive_s=math.inf)
        async with scheduled([forever], Limits(tick_s=0.02), factory) as scheduler:
            (await scheduler.acquire("a")).release()
            line = await scheduler.unload("a")
            assert line.state == "unloaded" and line.pid is None and factory.made[0].closed
            assert (await scheduler.unload("a")).state == "unloaded"  # already stopped: nothing to do
            (await scheduler.acquire("a")).release()
            assert states(scheduler) == {"a": "loaded"} and len(factory.made) == 2
            # Its own keep-alive (forever) applies again after the reload.
            assert scheduler.status().models[0].keep_alive_seconds is None
            with pytest.raises(APIError) as caught:
                await scheduler.unload("nope")
            assert caught.value.status == 404

    run(body)


def test_a_busy_model_unloads_when_its_last_call_ends() -> None:
    async def body() -> None:
        factory = FakeFactory()
        forever = fake_deployment("a", keep_alive_s=math.inf)
        async with scheduled([forever], Limits(tick_s=0.02), factory) as scheduler:
            lease = await scheduler.acquire("a")
            line = await scheduler.unload("a")
            assert (line.state, line.active) == ("loaded", 1) and not factory.made[0].closed
            lease.release()
            await until(lambda: states(scheduler) == {"a": "unloaded"}, within=2)
            assert factory.made[0].closed

    run(body)
