"""The scheduler: which models are resident, who runs next, and when a model is unloaded.

Every service has a `Runner`: its engine (a worker process) while loaded, the requests running on
it, and a priority queue of requests waiting for a slot. A request `acquire`s a `Lease` (a slot on
a loaded engine) and releases it when its last delta is sent. A model has as many slots as its
engine batches (`max_num_seqs`), or its service's limit when lower, so the overflow waits here,
where it can be seen and ordered, not inside the engine; slots may also be limited per device.
Waiting requests are admitted highest priority first, first come first served within a
priority, across every model, except that a request waiting longer than the starvation limit goes
ahead of the rest. A name the scheduler does not serve yet is given to its resolver (the installed
hub artifacts), and a model found there becomes an ordinary one from then on. A model loads on
first use, stays loaded for its keep-alive after
its last request, and is evicted least-recently-used when a model that must load would not fit the
memory budget; a model with a running request is never evicted. A runner that dies is noticed,
counted, and loaded again on next use. Engines come from a factory, so tests can script them.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import math
import time
from collections.abc import Callable
from typing import Literal

from adapters.base import EngineKind, EngineStartError
from server.http.errors import APIError, invalid_request, model_not_found
from server.serving.deployments import Deployment, Resolver
from server.serving.runner import EngineFactory, Limits, ManagedEngine, Runner, Waiter, full_pool, start_worker
from server.serving.status import ModelStatus, Status

HealthState = Literal["ready", "loading", "unavailable"]

log = logging.getLogger(__name__)


class Lease:
    """A slot on a loaded engine for one API call; `release()` it when the call is over."""

    def __init__(self, scheduler: Scheduler, runner: Runner, engine: ManagedEngine, keep_alive_s: float | None) -> None:
        self.engine = engine
        self.deployment = runner.deployment
        self._scheduler = scheduler
        self._runner = runner
        self._keep_alive_s = keep_alive_s
        self._released = False

    def release(self) -> None:
        """Give the slot back (idempotent); the model's keep-alive starts counting when it is idle."""
        if not self._released:
            self._released = True
            self._scheduler._release(self._runner, self._keep_alive_s)


def _unavailable(name: str, why: str) -> APIError:
    return APIError(
        503, f"The model `{name}` is not available right now: {why}", type="server_error", code="model_unavailable"
    )


class Scheduler:
    """Owns every runner; created and closed by the app's lifespan."""

    def __init__(
        self,
        deployments: list[Deployment],
        limits: Limits,
        factory: EngineFactory = start_worker,
        resolve: Resolver | None = None,
    ) -> None:
        self.limits = limits
        self.created = int(time.time())
        self._factory = factory
        self._resolve = resolve
        self._runners = {d.name: Runner(d) for d in deployments}
        self._configured = frozenset(self._runners)
        self._seq = itertools.count()
        self._device_active: dict[str, int] = {}
        self._changed = asyncio.Event()
        self._reaper: asyncio.Task[None] | None = None
        # Preloads running while the HTTP server binds (`start(in_background=True)`), by model id.
        self._preloads: dict[str, asyncio.Task[None]] = {}
        self._preload_failed: set[str] = set()
        self.on_event: Callable[[str, str], None] = lambda event, model: None

    # --- lookup ----------------------------------------------------------------------------------

    def deployment(self, name: str) -> Deployment:
        """The deployment served as `name`; 404 if none."""
        return self._runner(name).deployment

    def names(self) -> list[str]:
        """Every model id served, in the services file's order, then the models resolved on first
        use, in the order they were first asked for."""
        return list(self._runners)

    def forget(self, name: str) -> bool:
        """Stop serving `name` (its artifact is being removed) if it was added on first use and
        holds nothing now; False when it is configured, loaded or asked for."""
        runner = self._runners.get(name)
        if runner is None:
            return True
        if name in self._configured or runner.resident or runner.active or runner.waiters:
            return False
        del self._runners[name]
        return True

    def is_configured(self, name: str) -> bool:
        """Whether `name` is a service of the configuration (not an installed model added on use)."""
        return name in self._configured

    def is_resident(self, name: str) -> bool:
        """Whether `name`'s model is loaded (or loading) now."""
        runner = self._runners.get(name)
        return runner is not None and runner.resident

    def device_of(self, name: str) -> str | None:
        """The device `name` runs on (where it would load, when it is not loaded); None if unknown."""
        runner = self._runners.get(name)
        return runner.device if runner is not None else None

    def names_of_kind(self, kind: EngineKind) -> list[str]:
        """The model ids whose engines serve `kind`."""
        return [n for n, r in self._runners.items() if r.kind == kind]

    def _runner(self, name: str) -> Runner:
        runner = self._runners.get(name)
        if runner is None:
            found = self._resolved(name)
            if found is None:
                raise model_not_found(name)
            # No await since the lookup: two first requests for a model cannot both add it.
            runner = self._runners[name] = Runner(found)
            log.info("serving the installed model %s from now on (it loads on first use)", name)
        return runner

    def _resolved(self, name: str) -> Deployment | None:
        if self._resolve is None:
            return None
        try:
            # Reads a manifest and the model's metadata (~0.1 s), once per model: not worth a thread.
            return self._resolve(name)
        except Exception as exc:
            log.error("cannot serve the installed model %s: %s", name, exc)
            raise _unavailable(name, "its files cannot be read.") from exc

    def _runner_of_kind(self, name: str, kind: EngineKind) -> Runner:
        """`name`'s runner; a 400 naming the right endpoint when its engine serves another kind."""
        runner = self._runner(name)
        if runner.kind == kind:
            return runner
        if runner.kind == "embeddings":
            message = f"The model `{name}` is an embedding model; use /v1/embeddings or /v1/rerank."
        else:
            available = ", ".join(self.names_of_kind("embeddings")) or "none is loaded"
            message = (
                f"The model `{name}` is a chat model and cannot create embeddings; "
                f"use an embedding model ({available})."
            )
        raise invalid_request(message, param="model", code="model_not_supported")

    # --- admission -------------------------------------------------------------------------------

    def _can_run(self, runner: Runner) -> bool:
        device_limit = self.limits.max_concurrency_per_device
        device_active = self._device_active.get(runner.deployment.device, 0)
        return runner.active < runner.deployment.slots and (not device_limit or device_active < device_limit)

    def _take(self, runner: Runner) -> None:
        runner.active += 1
        device = runner.deployment.device
        self._device_active[device] = self._device_active.get(device, 0) + 1

    def _pump(self) -> None:
        """Admit waiting requests while slots are free: the best (priority, arrival) first."""
        starvation_s = self.limits.starvation_s
        while True:
            now = time.monotonic()
            # Queues hold at most max_queue waiters, so a scan per admission costs microseconds.
            candidates = [
                (w.admission_key(now, starvation_s), w, r)
                for r in self._runners.values()
                if r.waiters and self._can_run(r)
                for w in r.waiters
            ]
            if not candidates:
                return
            _, waiter, runner = min(candidates, key=lambda c: c[0])
            runner.waiters.remove(waiter)
            if not waiter.future.done():
                self._take(runner)
                waiter.future.set_result(None)

    async def acquire(
        self, name: str, priority: int | None = None, keep_alive_s: float | None = None, kind: EngineKind = "chat"
    ) -> Lease:
        """Wait for a slot on `name`'s engine (loading it if needed) and return the lease.

        Raises 404 for an unknown model, 400 for a model whose engine is not of `kind`, 429 with
        Retry-After when its queue is full, 503 when the wait exceeds the queue timeout or the
        model cannot load. Cancelling the caller (a client that went away) removes the request
        from the queue.
        """
        runner = self._runner_of_kind(name, kind)
        if not runner.waiters and self._can_run(runner):
            self._take(runner)
        else:
            await self._wait_in_queue(runner, runner.deployment.service.priority if priority is None else priority)
        try:
            engine = await self._ensure_loaded(runner)
        except BaseException:
            self._release(runner, None)
            raise
        return Lease(self, runner, engine, keep_alive_s)

    async def _wait_in_queue(self, runner: Runner, priority: int) -> None:
        name = runner.deployment.name
        if len(runner.waiters) >= self.limits.max_queue:
            self.on_event("rejected", name)
            retry = max(1, math.ceil(self.limits.queue_timeout_s / 10))
            raise APIError(
                429,
                f"Too many requests are waiting for `{name}` ({len(runner.waiters)} queued); try again later.",
                type="rate_limit_error",
                code="queue_full",
                headers={"Retry-After": str(retry)},
            )
        waiter = Waiter(priority, next(self._seq), asyncio.get_running_loop().create_future())
        runner.waiters.append(waiter)
        try:
            async with asyncio.timeout(self.limits.queue_timeout_s):
                await asyncio.shield(waiter.future)
        except BaseException as exc:
            if waiter.future.done() and not waiter.future.cancelled():
                self._release(runner, None)  # admitted just as the caller gave up
            else:
                waiter.future.cancel()
                with contextlib.suppress(ValueError):
                    runner.waiters.remove(waiter)
            if isinstance(exc, TimeoutError):
                self.on_event("timeout", name)
                raise APIError(
                    503,
                    f"The request waited {self.limits.queue_timeout_s:g}s for `{name}` without being admitted; "
                    "the server is busy, try again later.",
                    type="server_error",
                    code="queue_timeout",
                    headers={"Retry-After": "1"},
                ) from None
            raise

    def _release(self, runner: Runner, keep_alive_s: float | None) -> None:
        runner.active -= 1
        self._device_active[runner.deployment.device] -= 1
        runner.last_used = time.monotonic()
        if keep_alive_s is not None:
            runner.keep_alive_s = keep_alive_s
        if runner.engine is not None and not runner.engine.alive:
            self._on_crash(runner)
        elif runner.active == 0 and runner.keep_alive_s == 0 and not runner.waiters:
            asyncio.get_running_loop().create_task(self._unload_if_idle(runner, "expired"))
        self._changed.set()
        self._pump()

    # --- residency -------------------------------------------------------------------------------

    async def _ensure_loaded(self, runner: Runner) -> ManagedEngine:
        async with runner.load_lock:
            if runner.engine is not None and not runner.engine.alive:
                self._on_crash(runner)
            if runner.engine is not None:
                return runner.engine
            name = runner.deployment.name
            runner.state = "loading"
            runner.forget_memory()
            runner.memory_bytes = runner.deployment.estimated_bytes
            try:
                await self._make_room(runner)
                started = time.monotonic()
                engine = await self._factory(runner.deployment.spec, runner.deployment.options)
            except EngineStartError as exc:
                runner.state = "unloaded"
                log.error("cannot load %s: %s", name, exc)
                raise _unavailable(name, "it failed to load.") from exc
            except BaseException:
                runner.state = "unloaded"
                raise
            finally:
                self._changed.set()
            runner.engine, runner.state = engine, "loaded"
            runner.loads += 1
            runner.measure()
            self.on_event("load", name)
            log.info(
                "loaded %s in %.1fs (pid %s, %d MB resident, %d MB reserved)",
                name,
                time.monotonic() - started,
                engine.pid,
                runner.rss_bytes // 2**20,
                runner.memory_bytes // 2**20,
            )
            return engine

    def memory_used(self) -> int:
        """Bytes the resident models count against the budget (each: measured, at least estimated)."""
        return sum(r.memory_bytes for r in self._runners.values() if r.resident)

    async def _make_room(self, runner: Runner) -> None:
        """Evict idle models, least recently used first, until `runner`'s estimate fits the memory
        budget and its device's; wait for running requests to finish when only busy models are left
        to evict."""
        while (full := full_pool(self._runners.values(), runner, self.limits)) is not None:
            pool, members = full
            others = [r for r in members if r is not runner]
            idle = [r for r in others if r.state == "loaded" and r.active == 0]
            if idle:
                victim = min(idle, key=lambda r: r.last_used)
                victim.evictions += 1
                self.on_event("eviction", victim.deployment.name)
                log.info("evicting %s to make room for %s", victim.deployment.name, runner.deployment.name)
                await self._unload(victim, "evicted")
            elif not others:
                log.warning("%s alone exceeds the %s budget; loading it anyway", runner.deployment.name, pool)
                return
            else:
                self._changed.clear()
                try:
                    await asyncio.wait_for(self._changed.wait(), self.limits.queue_timeout_s)
                except TimeoutError:
                    raise _unavailable(runner.deployment.name, f"other models hold the {pool} budget.") from None

    async def _unload(self, runner: Runner, reason: str) -> None:
        engine, runner.engine = runner.engine, None
        runner.keep_alive_s = runner.deployment.keep_alive_s
        if engine is not None:
            # Its memory counts until the process has exited.
            runner.state = "unloading"
            log.info("unloading %s (%s)", runner.deployment.name, reason)
            try:
                await engine.close()
            finally:
                if runner.state == "unloading":  # not already loading again
                    runner.state = "unloaded"
                    runner.forget_memory()
        self._changed.set()

    async def retune(self, name: str, deployment: Deployment) -> bool:
        """Run `name` with `deployment` from now on: unload it and load it again with the new
        settings. False, and nothing changed, while requests run on it or wait for it."""
        runner = self._runner(name)
        async with runner.load_lock:
            if runner.active or runner.waiters:
                return False
            await self._unload(runner, "retuned")
            runner.deployment = deployment
            runner.keep_alive_s = deployment.keep_alive_s
        await self._ensure_loaded(runner)
        runner.last_used = time.monotonic()
        return True

    async def _unload_if_idle(self, runner: Runner, reason: str) -> None:
        async with runner.load_lock:
            if runner.engine is not None and runner.active == 0 and not runner.waiters:
                await self._unload(runner, reason)

    async def unload(self, name: str) -> ModelStatus:
        """Unload `name` now (`hearth stop`); a model still running calls unloads when its last one
        ends, as with a request's `keep_alive: 0`. 404 for a name it does not serve."""
        runner = self._runners.get(name)
        if runner is None:
            raise model_not_found(name)
        if runner.active or runner.waiters:
            runner.keep_alive_s = 0.0  # unloads when its last call ends; _unload restores the keep-alive
        else:
            await self._unload_if_idle(runner, "stopped")
        return runner.snapshot(name, time.monotonic())

    def _on_crash(self, runner: Runner) -> None:
        engine, runner.engine = runner.engine, None
        runner.state = "unloaded"
        runner.forget_memory()
        runner.crashes += 1
        self.on_event("crash", runner.deployment.name)
        log.error("the runner of %s died; it loads again on next use", runner.deployment.name)
        if engine is not None:
            asyncio.get_running_loop().create_task(engine.close())

    async def _reap(self) -> None:
        """Unload models idle past their keep-alive; notice dead runners; refresh memory."""
        while True:
            await asyncio.sleep(self.limits.tick_s)
            now = time.monotonic()
            for runner in self._runners.values():
                if runner.state != "loaded" or runner.engine is None:
                    continue
                if not runner.engine.alive and runner.active == 0:
                    self._on_crash(runner)
                elif runner.active == 0 and not runner.waiters and now - runner.last_used >= runner.keep_alive_s:
                    await self._unload_if_idle(runner, "expired")
                else:
                    runner.measure()

    # --- lifecycle and reporting -----------------------------------------------------------------

    async def start(self, in_background: bool = False) -> None:
        """Load the preloaded services and start watching keep-alives. `in_background`: return at
        once and load them while the HTTP server binds (a request for one waits on its load lock;
        `health()` says `loading` meanwhile, and `unavailable` if the load failed)."""
        loop = asyncio.get_running_loop()
        for name, runner in self._runners.items():
            if not runner.deployment.service.preload:
                continue
            if in_background:
                self._preloads[name] = loop.create_task(self._preload(runner, in_background=True))
            else:
                await self._preload(runner, in_background=False)
        self._reaper = loop.create_task(self._reap())

    async def _preload(self, runner: Runner, in_background: bool) -> None:
        started = time.monotonic()
        try:
            await self._ensure_loaded(runner)
        except APIError:
            if not in_background:
                raise
            # Already logged by the load; the server keeps serving its other models, and a later
            # request tries to load this one again.
            self._preload_failed.add(runner.deployment.name)
            return
        runner.last_used = time.monotonic()
        log.info("preloaded %s in %.2fs", runner.deployment.name, runner.last_used - started)

    async def close(self) -> None:
        """Stop every runner."""
        for task in self._preloads.values():
            task.cancel()
        await asyncio.gather(*self._preloads.values(), return_exceptions=True)
        if self._reaper is not None:
            self._reaper.cancel()
            await asyncio.gather(self._reaper, return_exceptions=True)
        await asyncio.gather(*(self._unload(r, "shutdown") for r in self._runners.values()), return_exceptions=True)

    def context_length(self, name: str) -> int:
        """`name`'s context window: the loaded engine's, else what its files say."""
        runner = self._runner(name)
        return runner.engine.info.context_length if runner.engine is not None else runner.deployment.context_length

    def health(self) -> dict[str, HealthState]:
        """Model id -> `ready` (loaded, or unloaded: it loads on use), `loading` (its preload is
        under way) or `unavailable` (its runner died, or its preload failed)."""
        states: dict[str, HealthState] = {}
        for name, runner in self._runners.items():
            preload = self._preloads.get(name)
            if runner.engine is not None:
                states[name] = "ready" if runner.engine.alive else "unavailable"
            elif preload is not None and not preload.done():
                states[name] = "loading"
            elif name in self._preload_failed and runner.loads == 0:
                states[name] = "unavailable"
            else:
                states[name] = "ready"
        return states

    def status(self) -> Status:
        """A snapshot for GET /v1/status and the metrics."""
        now = time.monotonic()
        models = [r.snapshot(name, now) for name, r in self._runners.items()]
        return Status(
            memory_budget_bytes=self.limits.memory_budget_bytes,
            memory_used_bytes=self.memory_used(),
            device_budgets_bytes=dict(self.limits.device_budgets),
            models=models,
        )
