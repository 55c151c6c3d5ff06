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
import logging
import time
from typing import Literal

from adapters.base import EngineStartError
from server.http.errors import APIError, model_not_found
from server.serving.admission import Admission, Lease, _unavailable
from server.serving.deployments import Deployment
from server.serving.runner import ManagedEngine, Runner, full_pool
from server.serving.status import ModelStatus, Status

__all__ = ["HealthState", "Lease", "Scheduler"]

HealthState = Literal["ready", "loading", "unavailable"]

log = logging.getLogger(__name__)


class Scheduler(Admission):
    """Owns every runner; created and closed by the app's lifespan."""

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
        `health()` says `loading` meanwhile, and `unavailable` if the load failed), except those on
        an explicitly named device, which load first."""
        loop = asyncio.get_running_loop()
        for name, runner in self._runners.items():
            if not runner.deployment.service.preload:
                continue
            # An explicitly named accelerator loads before the server binds, so that one this
            # machine lacks stops `hearth serve` with its message, not a server that cannot serve
            # (the CPU is always there).
            explicit = runner.deployment.options.device.strip().lower() not in ("auto", "cpu")
            if in_background and not explicit:
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
