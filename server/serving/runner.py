"""A runner: one service's model as the scheduler sees it, and the limits it is scheduled under.

The runner's engine comes from an `EngineFactory`: in production a worker process per model
(`adapters/engines.py`: a text generation or an embedding engine); in tests a scripted fake.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import time
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from typing import Protocol

import psutil

from adapters.base import Engine, EngineKind, EngineOptions, RunnerExitHook, Tokenize, Tokens
from adapters.engines import start_engine
from adapters.sandbox import Confinement
from hub.models import ModelSpec
from server.serving.deployments import Deployment, device_key
from server.serving.status import ModelStatus, RunnerState


class ManagedEngine(Engine, Protocol):
    """An engine the scheduler can account for: it runs in a process whose id it knows."""

    @property
    def pid(self) -> int | None:
        """The process that holds the model's memory (None: in this process)."""
        ...

    async def tokenize(self, command: Tokenize) -> Tokens:
        """Tokenize or detokenize with the model's own tokenizer."""
        ...


EngineFactory = Callable[[ModelSpec, EngineOptions], Awaitable[ManagedEngine]]


async def start_worker(spec: ModelSpec, options: EngineOptions) -> ManagedEngine:
    """The production factory: a model (either kind) in its own worker process."""
    return await start_engine(spec, options)


def confined_worker_factory(confinement: Confinement | None, on_exit: RunnerExitHook | None) -> EngineFactory:
    """`start_worker` whose workers confine themselves (docs/security.md) and report an exit
    nobody asked for to `on_exit`."""

    async def start(spec: ModelSpec, options: EngineOptions) -> ManagedEngine:
        return await start_engine(spec, options, confinement, on_exit)

    return start


@dataclass(frozen=True)
class Limits:
    """Queueing and residency limits (0 means no limit where a count is concerned)."""

    max_queue: int = 256
    queue_timeout_s: float = 300.0
    memory_budget_bytes: int = 0
    # Bytes the models on an accelerator may use together, by `device_key` (devices that report
    # their memory: OpenVINO GPUs). A model counts its estimate there: psutil cannot see it.
    device_budgets: dict[str, int] = field(default_factory=dict)
    max_concurrency_per_device: int = 0
    # A request that has waited this long goes ahead of every request that has not, whatever the
    # priorities (first come, first served among them), so that a steady stream of urgent work
    # cannot starve the rest into queue timeouts (0: strict priority).
    starvation_s: float = 60.0
    # How often idle models are checked for keep-alive expiry and dead runners.
    tick_s: float = 0.5


@dataclass
class Waiter:
    """A request waiting for a slot."""

    priority: int
    # Arrival order across all models.
    seq: int
    future: asyncio.Future[None]
    enqueued: float = field(default_factory=time.monotonic)

    def admission_key(self, now: float, starvation_s: float) -> tuple[int, int, int]:
        """Smallest goes first: requests waiting past `starvation_s` in arrival order, then the
        rest by priority and arrival."""
        if starvation_s and now - self.enqueued >= starvation_s:
            return (0, 0, self.seq)
        return (1, -self.priority, self.seq)


@dataclass
class Runner:
    """One service's model: engine while loaded, running and waiting requests, counters."""

    deployment: Deployment
    engine: ManagedEngine | None = None
    state: RunnerState = "unloaded"
    active: int = 0
    # In arrival order.
    waiters: list[Waiter] = field(default_factory=list)
    last_used: float = field(default_factory=time.monotonic)
    keep_alive_s: float = 0.0
    # What the memory budget counts for it: its measured size, but never less than the estimate
    # while resident, since its KV cache keeps growing into the estimate after the load.
    memory_bytes: int = 0
    # Resident set size of its process, measured with psutil (0 until measured).
    rss_bytes: int = 0
    measured: bool = False
    loads: int = 0
    evictions: int = 0
    crashes: int = 0
    load_lock: asyncio.Lock = field(default_factory=asyncio.Lock)

    def __post_init__(self) -> None:
        self.keep_alive_s = self.deployment.keep_alive_s

    @property
    def device(self) -> str:
        """The device it runs on (where it would load, while it is not loaded)."""
        return self.engine.info.device if self.engine is not None else self.deployment.device

    @property
    def kind(self) -> EngineKind:
        """What its engine serves: text generation or embeddings."""
        return self.deployment.kind

    @property
    def resident(self) -> bool:
        """Whether it holds (or is about to hold) memory."""
        return self.state != "unloaded"

    def measure(self) -> None:
        """Refresh `rss_bytes` from the runner process's resident set size, and `memory_bytes`."""
        pid = self.engine.pid if self.engine is not None else None
        if pid is None:
            self.rss_bytes, self.measured = 0, False
        else:
            with contextlib.suppress(psutil.Error):
                self.rss_bytes, self.measured = psutil.Process(pid).memory_info().rss, True
        self.memory_bytes = max(self.rss_bytes, self.deployment.estimated_bytes)

    def snapshot(self, name: str, now: float) -> ModelStatus:
        """Its line of GET /v1/status, served as `name`, at monotonic time `now`."""
        idle = now - self.last_used if self.state == "loaded" and self.active == 0 else None
        forever = math.isinf(self.keep_alive_s)
        return ModelStatus(
            id=name,
            model=self.deployment.service.model,
            state=self.state,
            device=self.device,
            priority=self.deployment.service.priority,
            pid=self.engine.pid if self.engine is not None else None,
            memory_bytes=self.memory_bytes if self.resident else 0,
            rss_bytes=self.rss_bytes if self.measured else None,
            memory_measured=self.measured,
            estimated_bytes=self.deployment.estimated_bytes,
            slots=self.deployment.slots,
            active=self.active,
            queued=len(self.waiters),
            idle_seconds=None if idle is None else round(idle, 3),
            keep_alive_seconds=None if forever else self.keep_alive_s,
            expires_in_seconds=None if idle is None or forever else round(max(0.0, self.keep_alive_s - idle), 3),
            loads=self.loads,
            evictions=self.evictions,
            crashes=self.crashes,
        )

    def forget_memory(self) -> None:
        """It holds no memory any more (unloaded, or its process died)."""
        self.memory_bytes, self.rss_bytes, self.measured = 0, 0, False


def full_pool(runners: Iterable[Runner], runner: Runner, limits: Limits) -> tuple[str, list[Runner]] | None:
    """A memory pool `runner` counts in that is over its budget, with the resident runners in it
    (`runner` included); None when all fit. The pools: all RAM (each runner at `memory_bytes`),
    and the runner's accelerator when it has a budget (each runner there at its estimate)."""
    resident = [r for r in runners if r.resident]
    if limits.memory_budget_bytes and sum(r.memory_bytes for r in resident) > limits.memory_budget_bytes:
        return "memory", resident
    device = device_key(runner.device)
    budget = limits.device_budgets.get(device, 0)
    on_device = [r for r in resident if device_key(r.device) == device]
    if budget and sum(r.deployment.estimated_bytes for r in on_device) > budget:
        return f"{device} memory", on_device
    return None
