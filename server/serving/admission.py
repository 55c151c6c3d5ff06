"""Admission: the runners' table, the priority queue of calls waiting for a slot, and leases.

The base of `Scheduler` (server/serving/scheduler.py, which adds loading, eviction, unloading and the
runners' lifecycle): a call `acquire`s a `Lease` on a loaded engine, waiting in a priority queue
across every model when the model's or the device's slots are taken, and releases it when it ends.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import math
import time
from collections.abc import Callable

from adapters.base import EngineKind
from server.http.errors import APIError, invalid_request, model_not_found
from server.serving.deployments import Deployment, Resolver
from server.serving.runner import EngineFactory, Limits, ManagedEngine, Runner, Waiter, start_worker

log = logging.getLogger(__name__)


class Lease:
    """A slot on a loaded engine for one API call; `release()` it when the call is over."""

    def __init__(self, scheduler: Admission, runner: Runner, engine: ManagedEngine, keep_alive_s: float | None) -> None:
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


class Admission:
    """The runners and their queues; `Scheduler` loads and unloads what they run on."""

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

    # --- provided by Scheduler ---------------------------------------------------------------------

    async def _ensure_loaded(self, runner: Runner) -> ManagedEngine:
        raise NotImplementedError

    def _on_crash(self, runner: Runner) -> None:
        raise NotImplementedError

    async def _unload_if_idle(self, runner: Runner, reason: str) -> None:
        raise NotImplementedError
