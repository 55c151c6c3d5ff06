"""The scheduler with a scripted fake engine: residency, eviction, priorities, queue limits,
slots as many as the engine batches, and installed models resolved on first use."""

from __future__ import annotations

import asyncio
import dataclasses
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import msgspec
import pytest

from adapters.base import EngineOptions, EngineStartError
from adapters.hardware import DeviceInfo
from server.http.errors import APIError
from server.serving.deployments import Deployment, Resolver, device_budgets
from server.serving.runner import EngineFactory, Limits
from server.serving.scheduler import Lease, Scheduler
from server.settings import load_settings
from tests.server.fake_engine import FakeFactory, fake_deployment


def run(test: Callable[[], Awaitable[None]], timeout: float = 20) -> None:
    """Run an async test body with a deadline."""
    asyncio.run(asyncio.wait_for(test(), timeout))


@asynccontextmanager
async def scheduled(
    deployments: list[Deployment], limits: Limits, factory: EngineFactory, resolve: Resolver | None = None
) -> AsyncIterator[Scheduler]:
    """A started scheduler, closed when the block is left."""
    scheduler = Scheduler(deployments, limits, factory, resolve)
    await scheduler.start()
    try:
        yield scheduler
    finally:
        await scheduler.close()


def batching(deployment: Deployment, max_num_seqs: int) -> Deployment:
    """`deployment` on an engine that batches `max_num_seqs` sequences."""
    return dataclasses.replace(deployment, options=EngineOptions(device=deployment.device, max_num_seqs=max_num_seqs))


def states(scheduler: Scheduler) -> dict[str, str]:
    """Model id -> runner state."""
    return {m.id: m.state for m in scheduler.status().models}


async def until(condition: Callable[[], bool], within: float = 5.0) -> None:
    """Wait until `condition()` holds."""
    deadline = time.monotonic() + within
    while not condition():
        assert time.monotonic() < deadline, "condition not reached in time"
        await asyncio.sleep(0.01)


def test_loads_on_first_use_and_404_for_unknown_models() -> None:
    async def body() -> None:
        factory = FakeFactory()
        async with scheduled([fake_deployment("a")], Limits(tick_s=0.02), factory) as scheduler:
            assert states(scheduler) == {"a": "unloaded"} and not factory.made
            lease = await scheduler.acquire("a")
            assert states(scheduler) == {"a": "loaded"} and len(factory.made) == 1
            lease.release()
            again = await scheduler.acquire("a")
            again.release()
            assert len(factory.made) == 1 and scheduler.status().models[0].loads == 1
            with pytest.raises(APIError) as caught:
                await scheduler.acquire("nope")
            assert caught.value.status == 404

    run(body)


def test_keep_alive_expiry_and_request_override() -> None:
    async def body() -> None:
        factory = FakeFactory()
        async with scheduled([fake_deployment("a", keep_alive_s=0.3)], Limits(tick_s=0.02), factory) as scheduler:
            (await scheduler.acquire("a")).release()
            released = time.monotonic()
            await asyncio.sleep(0.1)
            assert states(scheduler) == {"a": "loaded"}
            (expires,) = [m.expires_in_seconds for m in scheduler.status().models]
            assert expires is not None and 0 < expires <= 0.3
            await until(lambda: states(scheduler) == {"a": "unloaded"})
            assert time.monotonic() - released >= 0.3 and factory.made[0].closed
            # keep_alive 0 on a request unloads as soon as the model is idle; negative keeps it.
            (await scheduler.acquire("a", keep_alive_s=0)).release()
            await until(lambda: states(scheduler) == {"a": "unloaded"}, within=1)
            (await scheduler.acquire("a", keep_alive_s=float("inf"))).release()
            await asyncio.sleep(0.5)
            assert states(scheduler) == {"a": "loaded"}
            assert scheduler.status().models[0].keep_alive_seconds is None

    run(body)


def test_lru_eviction_under_a_small_budget_spares_busy_models() -> None:
    async def body() -> None:
        factory = FakeFactory()
        models = [fake_deployment(n, estimated_bytes=100) for n in "abc"]
        async with scheduled(models, Limits(memory_budget_bytes=250, tick_s=0.02), factory) as scheduler:
            (await scheduler.acquire("a")).release()
            (await scheduler.acquire("b")).release()
            (await scheduler.acquire("a")).release()  # b is now the least recently used
            (await scheduler.acquire("c")).release()
            assert states(scheduler) == {"a": "loaded", "b": "unloaded", "c": "loaded"}
            assert [m.evictions for m in scheduler.status().models] == [0, 1, 0]
            assert scheduler.memory_used() <= 250
            # Both resident models busy: loading b waits until one of them is free, then evicts it.
            busy_a, busy_c = await scheduler.acquire("a"), await scheduler.acquire("c")
            loading = asyncio.create_task(scheduler.acquire("b"))
            await asyncio.sleep(0.2)
            assert not loading.done() and states(scheduler)["b"] == "loading"
            busy_c.release()
            lease = await loading
            assert states(scheduler) == {"a": "loaded", "b": "loaded", "c": "unloaded"}
            lease.release()
            busy_a.release()

    run(body)


def test_an_accelerator_budget_evicts_only_models_on_that_device() -> None:
    async def body() -> None:
        models = [
            fake_deployment("cpu", device="CPU"),
            fake_deployment("gpu1", device="GPU"),
            fake_deployment("gpu2", device="GPU.0"),  # the same device under its other name
        ]
        # RAM has no budget here; the GPU holds one model.
        async with scheduled(models, Limits(device_budgets={"GPU": 150}, tick_s=0.02), FakeFactory()) as scheduler:
            for name in ("cpu", "gpu1", "gpu2"):  # cpu is the least recently used of all
                (await scheduler.acquire(name)).release()
            assert states(scheduler) == {"cpu": "loaded", "gpu1": "unloaded", "gpu2": "loaded"}
            assert scheduler.status().device_budgets_bytes == {"GPU": 150}

    run(body)


def test_device_budgets_are_a_share_of_what_accelerators_report() -> None:
    devices = [
        DeviceInfo(runtime="openvino", id="CPU", kind="cpu", name="a CPU"),
        DeviceInfo(runtime="openvino", id="GPU.0", kind="gpu", name="a GPU", memory_bytes=8 * 2**30),
        DeviceInfo(runtime="openvino", id="GPU.1", kind="gpu", name="another", memory_bytes=2**30),
        DeviceInfo(runtime="openvino", id="NPU", kind="npu", name="an NPU"),
    ]
    settings = load_settings({"device_memory_fraction": 0.5}, env={})
    assert device_budgets(settings, devices) == {"GPU": 4 * 2**30, "GPU.1": 2**29}


def test_device_budgets_load_no_openvino_where_no_gpu_can_be() -> None:
    # The server asks for budgets at start-up when the device is AUTO (the default): without a
    # render node on Linux, no OpenVINO GPU can exist, and importing OpenVINO cost ~0.2 s.
    code = (
        "import sys; from adapters.hardware import openvino_gpu_possible; "
        "from server.serving.deployments import device_budgets; from server.settings import load_settings; "
        "print(openvino_gpu_possible(), device_budgets(load_settings({}, env={})), 'openvino' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, text=True).stdout.split()
    possible = sys.platform != "linux" or any(p.name.startswith("renderD") for p in Path("/dev/dri").glob("*"))
    assert out[0] == str(possible)
    if not possible:
        assert out[1:] == ["{}", "False"]


def test_priority_order_under_contention_is_highest_first_then_fifo() -> None:
    async def body() -> None:
        async with scheduled(
            [fake_deployment("a", max_concurrency=1)], Limits(tick_s=0.02), FakeFactory()
        ) as scheduler:
            order: list[str] = []

            async def client(label: str, priority: int) -> None:
                lease = await scheduler.acquire("a", priority=priority)
                order.append(label)
                await asyncio.sleep(0.01)
                lease.release()

            holder = await scheduler.acquire("a")
            tasks = []
            for label, priority in [("low1", 0), ("high", 10), ("mid", 5), ("low2", 0), ("urgent", 20)]:
                tasks.append(asyncio.create_task(client(label, priority)))
                await asyncio.sleep(0.01)  # arrival order is the order above
            assert scheduler.status().models[0].queued == 5
            holder.release()
            await asyncio.gather(*tasks)
            assert order == ["urgent", "high", "mid", "low1", "low2"]

    run(body)


@pytest.mark.parametrize(("starvation_s", "expected"), [(0.2, ["old-low", "new-high"]), (0.0, ["new-high", "old-low"])])
def test_a_request_waiting_past_the_starvation_limit_goes_first(starvation_s: float, expected: list[str]) -> None:
    async def body() -> None:
        limits = Limits(starvation_s=starvation_s, tick_s=0.02)
        async with scheduled([fake_deployment("a", max_concurrency=1)], limits, FakeFactory()) as scheduler:
            order: list[str] = []

            async def client(label: str, priority: int) -> None:
                lease = await scheduler.acquire("a", priority=priority)
                order.append(label)
                lease.release()

            holder = await scheduler.acquire("a")
            old = asyncio.create_task(client("old-low", 0))
            await asyncio.sleep(0.3)  # past the limit
            new = asyncio.create_task(client("new-high", 10))
            await asyncio.sleep(0.01)
            holder.release()
            await asyncio.gather(old, new)
            assert order == expected

    run(body)


def test_service_priority_is_the_default_across_models_on_one_device() -> None:
    async def body() -> None:
        models = [fake_deployment("batch", priority=0), fake_deployment("chat", priority=10)]
        limits = Limits(max_concurrency_per_device=1, tick_s=0.02)
        async with scheduled(models, limits, FakeFactory()) as scheduler:
            order: list[str] = []

            async def client(model: str) -> None:
                lease = await scheduler.acquire(model)
                order.append(model)
                lease.release()

            (await scheduler.acquire("chat")).release()  # load both first
            holder = await scheduler.acquire("batch")
            tasks = [asyncio.create_task(client(m)) for m in ("batch", "batch", "chat")]
            await asyncio.sleep(0.05)
            holder.release()
            await asyncio.gather(*tasks)
            assert order == ["chat", "batch", "batch"]

    run(body)


def test_full_queue_is_429_with_retry_after_and_a_long_wait_is_503() -> None:
    async def body() -> None:
        limits = Limits(max_queue=1, queue_timeout_s=0.3, tick_s=0.02)
        async with scheduled([fake_deployment("a", max_concurrency=1)], limits, FakeFactory()) as scheduler:
            holder = await scheduler.acquire("a")
            waiting = asyncio.create_task(scheduler.acquire("a"))
            await asyncio.sleep(0.05)
            with pytest.raises(APIError) as full:
                await scheduler.acquire("a")
            assert (full.value.status, full.value.detail.code) == (429, "queue_full")
            assert int(full.value.headers["Retry-After"]) >= 1
            with pytest.raises(APIError) as late:
                await waiting
            assert (late.value.status, late.value.detail.code) == (503, "queue_timeout")
            assert scheduler.status().models[0].queued == 0
            holder.release()
            (await scheduler.acquire("a")).release()

    run(body)


def test_a_cancelled_waiter_leaves_the_queue_and_takes_no_slot() -> None:
    async def body() -> None:
        async with scheduled(
            [fake_deployment("a", max_concurrency=1)], Limits(tick_s=0.02), FakeFactory()
        ) as scheduler:
            holder = await scheduler.acquire("a")
            gone = asyncio.create_task(scheduler.acquire("a"))
            await asyncio.sleep(0.05)
            assert scheduler.status().models[0].queued == 1
            gone.cancel()
            await asyncio.gather(gone, return_exceptions=True)
            assert scheduler.status().models[0].queued == 0
            holder.release()
            # The slot went back to the pool, not to the client that left.
            lease: Lease = await asyncio.wait_for(scheduler.acquire("a"), 1)
            assert scheduler.status().models[0].active == 1
            lease.release()
            assert scheduler.status().models[0].active == 0

    run(body)


def test_a_dead_runner_is_counted_and_reloaded_on_next_use() -> None:
    async def body() -> None:
        factory = FakeFactory()
        async with scheduled([fake_deployment("a"), fake_deployment("b")], Limits(tick_s=0.02), factory) as scheduler:
            lease = await scheduler.acquire("a")
            other = await scheduler.acquire("b")
            factory.made[0].crashed = True
            assert scheduler.health() == {"a": "unavailable", "b": "ready"}
            lease.release()
            status: dict[str, Any] = {m.id: m for m in scheduler.status().models}
            assert status["a"].crashes == 1 and status["a"].state == "unloaded"
            again = await scheduler.acquire("a")
            assert again.engine is factory.made[2] and again.engine.alive
            assert scheduler.status().models[0].loads == 2 and other.engine.alive
            again.release()
            other.release()

    run(body)


def test_a_model_without_a_limit_admits_as_many_as_its_engine_batches_and_queues_the_rest() -> None:
    async def body() -> None:
        limits = Limits(max_queue=1, tick_s=0.02)
        async with scheduled([batching(fake_deployment("a"), 2)], limits, FakeFactory()) as scheduler:
            running = [await scheduler.acquire("a"), await scheduler.acquire("a")]
            waiting = asyncio.create_task(scheduler.acquire("a", priority=5))
            await until(lambda: scheduler.status().models[0].queued == 1)
            (model,) = scheduler.status().models
            assert (model.slots, model.active, model.queued) == (2, 2, 1)
            with pytest.raises(APIError) as full:
                await scheduler.acquire("a")
            assert (full.value.status, full.value.detail.code) == (429, "queue_full")
            assert int(full.value.headers["Retry-After"]) >= 1
            running.pop().release()
            running.append(await asyncio.wait_for(waiting, 1))
            assert scheduler.status().models[0].active == 2
            for lease in running:
                lease.release()

    run(body)


@pytest.mark.parametrize(("max_concurrency", "expected"), [(0, 3), (1, 1), (3, 3), (10, 3)])
def test_a_service_limit_wins_only_when_lower_than_the_batch(max_concurrency: int, expected: int) -> None:
    async def body() -> None:
        deployment = batching(fake_deployment("a", max_concurrency=max_concurrency), 3)
        async with scheduled([deployment], Limits(tick_s=0.02), FakeFactory()) as scheduler:
            assert scheduler.status().models[0].slots == expected
            leases = [await scheduler.acquire("a") for _ in range(expected)]
            extra = asyncio.create_task(scheduler.acquire("a"))
            await asyncio.sleep(0.05)
            assert not extra.done() and scheduler.status().models[0].queued == 1
            leases[0].release()
            leases[0] = await asyncio.wait_for(extra, 1)
            for lease in leases:
                lease.release()

    run(body)


def test_an_installed_model_is_resolved_once_on_first_use_then_scheduled_like_the_rest() -> None:
    asked: list[str] = []

    def resolve(name: str) -> Deployment | None:
        asked.append(name)
        return fake_deployment(name, estimated_bytes=100, keep_alive_s=0.3) if name == "installed" else None

    async def body() -> None:
        factory = FakeFactory()
        limits = Limits(memory_budget_bytes=150, tick_s=0.02)
        async with scheduled([fake_deployment("a", estimated_bytes=100)], limits, factory, resolve) as scheduler:
            (await scheduler.acquire("a")).release()
            assert scheduler.names() == ["a"] and not asked
            with pytest.raises(APIError) as unknown:
                await scheduler.acquire("nope")
            assert (unknown.value.status, unknown.value.detail.code) == (404, "model_not_found")
            assert "nope" not in scheduler.names()
            # Loading it evicts `a` under the budget; it is listed, and expires after its keep-alive.
            lease = await scheduler.acquire("installed")
            assert scheduler.names() == ["a", "installed"]
            assert states(scheduler) == {"a": "unloaded", "installed": "loaded"}
            assert scheduler.deployment("installed").name == "installed"
            lease.release()
            await until(lambda: states(scheduler)["installed"] == "unloaded")
            (await scheduler.acquire("installed")).release()
            assert asked == ["nope", "installed"] and len(factory.made) == 3
            assert [m.loads for m in scheduler.status().models] == [1, 2]

    run(body)


def test_an_installed_model_that_cannot_be_read_is_503() -> None:
    def resolve(name: str) -> Deployment | None:
        raise ValueError(f"{name}: truncated file")

    async def body() -> None:
        async with scheduled([], Limits(tick_s=0.02), FakeFactory(), resolve) as scheduler:
            with pytest.raises(APIError) as broken:
                await scheduler.acquire("broken")
            assert (broken.value.status, broken.value.detail.code) == (503, "model_unavailable")
            assert scheduler.names() == []

    run(body)


def preloaded(name: str) -> Deployment:
    """`name` as a preloaded service."""
    deployment = fake_deployment(name)
    return dataclasses.replace(deployment, service=msgspec.structs.replace(deployment.service, preload=True))


def test_preloading_in_the_background_says_loading_until_it_is_ready() -> None:
    async def body() -> None:
        factory = FakeFactory(load_s=0.3)
        scheduler = Scheduler([preloaded("a"), fake_deployment("b")], Limits(tick_s=0.02), factory)
        started = time.monotonic()
        await scheduler.start(in_background=True)
        try:
            assert time.monotonic() - started < 0.2  # start() did not wait for the load
            assert scheduler.health() == {"a": "loading", "b": "ready"}
            lease = await scheduler.acquire("a")  # waits on the preload, which it shares
            assert scheduler.health() == {"a": "ready", "b": "ready"} and len(factory.made) == 1
            lease.release()
        finally:
            await scheduler.close()

    run(body)


def test_a_failed_background_preload_is_unavailable_until_a_load_succeeds() -> None:
    class FailingOnce(FakeFactory):
        async def __call__(self, spec: Any, options: EngineOptions) -> Any:
            if not self.made and not getattr(self, "failed", False):
                self.failed = True
                raise EngineStartError("cannot load")
            return await super().__call__(spec, options)

    async def body() -> None:
        factory = FailingOnce()
        scheduler = Scheduler([preloaded("a")], Limits(tick_s=0.02), factory)
        await scheduler.start(in_background=True)
        try:
            await until(lambda: scheduler.health() != {"a": "loading"})
            assert scheduler.health() == {"a": "unavailable"}
            (await scheduler.acquire("a")).release()
            assert scheduler.health() == {"a": "ready"}
        finally:
            await scheduler.close()

    run(body)


def test_a_failed_preload_in_the_foreground_stops_the_start() -> None:
    class Failing(FakeFactory):
        async def __call__(self, spec: Any, options: EngineOptions) -> Any:
            raise EngineStartError("cannot load")

    async def body() -> None:
        scheduler = Scheduler([preloaded("a")], Limits(tick_s=0.02), Failing())
        with pytest.raises(APIError):
            await scheduler.start()
        await scheduler.close()

    run(body)
