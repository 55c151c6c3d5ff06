"""The batch runner: one task, owned by the app's lifespan, that takes each open batch through its
lifecycle (validating → in_progress → finalizing → completed, or failed / expired / cancelled).

Lines run a few at a time (`batch_concurrency`) through the engine door at the batch priority, so an
interactive request is admitted before any waiting line and shares the engine with at most that
many. Every state change and every line's result is written to the store before the next step, so a
restart picks up where the last one stopped.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager

import msgspec
from litestar import Litestar
from msgspec import UNSET

from server.batches.lines import LineInterrupted, check_line, error_line, run_line
from server.batches.protocol import Batch, BatchError, BatchErrors
from server.batches.store import BatchStore
from server.inference.call import EngineDoor
from server.inference.responses.history import ResponseStore
from server.settings import BatchSettings, LimitSettings, Settings

log = logging.getLogger(__name__)


class BatchRunner:
    """Advances every open batch; `wake()` when one is created or cancelled."""

    def __init__(
        self,
        store: BatchStore,
        door: EngineDoor,
        responses: ResponseStore,
        settings: BatchSettings,
        limits: LimitSettings | None = None,
    ) -> None:
        self.store = store
        self.settings = settings
        # Lines are bounded as the HTTP requests they stand for (docs/security.md, "Limits").
        self.limits = limits if limits is not None else LimitSettings()
        self._door = door.at_priority(settings.batch_priority)
        self._responses = responses
        self._wake = asyncio.Event()
        # Status changes by the runner and by a cancel are serialized (both on the event loop).
        self.status_lock = asyncio.Lock()

    def wake(self) -> None:
        """Look at the open batches now rather than at the next poll."""
        self._wake.set()

    async def run(self) -> None:
        """Work until cancelled: each open batch, oldest first, then wait for news (or 5 s, for expiry)."""
        while True:
            self._wake.clear()
            for batch in await asyncio.to_thread(self.store.open_batches):
                try:
                    await self._advance(batch)
                except asyncio.CancelledError:
                    raise
                except Exception:  # one broken batch must not stop the others
                    log.exception("batch %s failed", batch.id)
                    await self._set(
                        batch.id, "failed", errors=[BatchError(code="server_error", message="internal error")]
                    )
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), 5)

    async def _advance(self, batch: Batch) -> None:
        if batch.status == "validating":
            await self._validate(batch)
        batch = await self._fresh(batch.id)
        if batch.status == "in_progress":
            await self._run_lines(batch)
        batch = await self._fresh(batch.id)
        if batch.status in ("finalizing", "cancelling"):
            await self._finalize(batch)

    async def _fresh(self, batch_id: str) -> Batch:
        batch = await asyncio.to_thread(self.store.get_batch, batch_id)
        assert batch is not None
        return batch

    async def _set(self, batch_id: str, status: str, errors: list[BatchError] | None = None) -> Batch:
        """Move a batch to `status` (stamping `<status>_at`), unless a cancel got there first."""
        async with self.status_lock:
            batch = await self._fresh(batch_id)
            if batch.status == "cancelling" and status not in ("cancelled", "failed"):
                return batch
            fields: dict[str, object] = {"status": status, f"{status}_at": int(time.time())}
            if errors:
                fields["errors"] = BatchErrors(data=errors)
            batch = msgspec.structs.replace(batch, **fields)
            await asyncio.to_thread(self.store.put_batch, batch)
            return batch

    async def _validate(self, batch: Batch) -> None:
        def check() -> tuple[list[tuple[int, str | None, bytes | None, bytes | None]], list[BatchError]]:
            path = self.store.path(batch.input_file_id)
            if not path.is_file():
                return [], [BatchError(code="file_not_found", message=f"input file {batch.input_file_id} is gone")]
            raw_lines = [line for line in path.read_bytes().splitlines() if line.strip()]
            if not raw_lines:
                return [], [BatchError(code="empty_file", message="the input file has no requests")]
            if len(raw_lines) > self.settings.batch_max_lines:
                why = (
                    f"the input file has {len(raw_lines)} requests; at most {self.settings.batch_max_lines} are allowed"
                )
                return [], [BatchError(code="too_many_requests", message=why, param="batch_max_lines")]
            rows: list[tuple[int, str | None, bytes | None, bytes | None]] = []
            seen: set[str] = set()
            for number, raw in enumerate(raw_lines, start=1):
                custom_id, good, problem = check_line(number, raw, batch.endpoint, seen, self.limits)
                bad = None if problem is None else error_line(custom_id, problem.code, problem.message)
                rows.append((number, custom_id, good, bad))
            return rows, []

        rows, problems = await asyncio.to_thread(check)
        if problems:
            await self._set(batch.id, "failed", errors=problems)
            return
        async with self.status_lock:
            batch = await self._fresh(batch.id)
            if batch.status != "validating":
                return
            failed = sum(1 for row in rows if row[3] is not None)
            counts = msgspec.structs.replace(batch.request_counts, total=len(rows), failed=failed)
            batch = msgspec.structs.replace(
                batch, status="in_progress", in_progress_at=int(time.time()), request_counts=counts
            )
            await asyncio.to_thread(self.store.add_lines, batch, rows)

    async def _run_lines(self, batch: Batch) -> None:
        pending = iter(await asyncio.to_thread(self.store.pending, batch.id))
        stop: list[str] = []  # why dispatching stopped: "expired", "cancelling" or "shutdown"

        async def worker() -> None:
            for number, _custom_id, raw in pending:
                current = await self._fresh(batch.id)
                if current.status == "cancelling":
                    stop.append("cancelling")
                if time.time() > batch.expires_at:
                    stop.append("expired")
                if stop:
                    return
                try:
                    result, is_error = await run_line(raw, self._door, self._responses, self.limits)
                except LineInterrupted:
                    stop.append("shutdown")
                    return
                await asyncio.to_thread(self.store.record, batch.id, number, result, is_error)

        await asyncio.gather(*(worker() for _ in range(self.settings.batch_concurrency)))
        if "expired" in stop and "cancelling" not in stop:
            await self._close_pending(batch.id, "batch_expired", "the batch's completion window ended first")
            await self._set(batch.id, "finalizing")
            await self._finish(batch.id, "expired")
        elif not stop:
            await self._set(batch.id, "finalizing")

    async def _close_pending(self, batch_id: str, code: str, message: str) -> None:
        for number, custom_id, _raw in await asyncio.to_thread(self.store.pending, batch_id):
            await asyncio.to_thread(self.store.record, batch_id, number, error_line(custom_id, code, message), True)

    async def _finalize(self, batch: Batch) -> None:
        if batch.status == "cancelling":
            await self._close_pending(batch.id, "batch_cancelled", "the batch was cancelled before this request ran")
            await self._finish(batch.id, "cancelled")
        else:
            await self._finish(batch.id, "completed")

    async def _finish(self, batch_id: str, status: str) -> None:
        """Write the output and error files, then move the batch to its final `status`."""

        def write() -> tuple[str | None, str | None]:
            ids: list[str | None] = []
            for errors, suffix in ((False, "output"), (True, "error")):
                lines = list(self.store.results(batch_id, errors))
                data = b"".join(line + b"\n" for line in lines)
                ids.append(
                    self.store.add_file(f"{batch_id}_{suffix}.jsonl", "batch_output", data).id if lines else None
                )
            return ids[0], ids[1]

        output_id, error_id = await asyncio.to_thread(write)
        async with self.status_lock:
            batch = await self._fresh(batch_id)
            batch = msgspec.structs.replace(
                batch,
                status=status,
                output_file_id=output_id if output_id else UNSET,
                error_file_id=error_id if error_id else UNSET,
                **{f"{status}_at": int(time.time())},
            )
            await asyncio.to_thread(self.store.put_batch, batch)


def batches_lifespan(settings: Settings) -> Callable[[Litestar], AbstractAsyncContextManager[None]]:
    """The lifespan part that owns the batch store and runner (after the engine door exists)."""

    @asynccontextmanager
    async def lifespan(app: Litestar) -> AsyncIterator[None]:
        store = BatchStore(settings.home_path / "batches")
        runner = BatchRunner(store, app.state.door, app.state.responses, settings.batches, settings.limits)
        app.state.batches = runner
        task = asyncio.create_task(runner.run(), name="batch-runner")
        try:
            yield
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
            store.close()

    return lifespan
