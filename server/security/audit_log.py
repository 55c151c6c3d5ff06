"""The server's audit log: `record()` never blocks; a writer thread appends batches in order, and
when it cannot, the log says it is failing until it can again (fail closed).

A batch the writer cannot append (the disk is full, the file system is gone, the log cannot be
read back) stays held in memory, in order, and is tried again every `retry_s` seconds; new records
join it, up to `max_held` (past that they are counted as lost). While a batch is held,
`failure` says why, and the security middleware refuses model calls with a 503: an audit log that
can silently stop is not an audit log. The first batch that goes through starts with an
`audit_gap` record (cause `write_failed`: since when, why, how many records were written late and
how many were lost), so the outage is in the chain itself.
"""

from __future__ import annotations

import contextlib
import logging
import queue
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any, Literal

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from server.security.audit import GAP, AuditWriter, utc_now

log = logging.getLogger(__name__)

AuditState = Literal["ok", "failing"]


class AuditLog:
    """Records go on a queue; a thread writes them, holding (and retrying) what it cannot write."""

    def __init__(self, writer: AuditWriter, retry_s: float = 1.0, max_held: int = 100_000) -> None:
        self.writer = writer
        self.retry_s = retry_s
        self.max_held = max_held
        # Why the last write failed and since when (ISO time); None while writing works. Read by
        # the event loop, written only by the writer thread.
        self.failure: str | None = None
        self.failed_since: str | None = None
        self.write_errors = 0
        self.lost = 0
        self._held: list[dict[str, Any]] = []
        self._queue: queue.SimpleQueue[dict[str, Any] | None] = queue.SimpleQueue()
        self._thread = threading.Thread(target=self._run, name="audit-writer", daemon=True)
        self._thread.start()

    @property
    def state(self) -> AuditState:
        """`failing` while records cannot be written, else `ok`."""
        return "ok" if self.failure is None else "failing"

    @property
    def held(self) -> int:
        """Records waiting to be written."""
        return len(self._held)

    def record(self, event: str, **fields: Any) -> None:
        """Queue one record (`time` and `event` first, then `fields` without the None ones)."""
        entry = {"time": utc_now(), "event": event}
        entry.update((k, v) for k, v in fields.items() if v is not None)
        self._queue.put(entry)

    def close(self) -> None:
        """Write everything queued (one last try if the log is failing), then stop the writer."""
        self._queue.put(None)
        self._thread.join(timeout=30)

    def _take(self, item: dict[str, Any] | None) -> bool:
        """Hold `item` for writing; True for the stop sentinel."""
        if item is None:
            return True
        if len(self._held) < self.max_held:
            self._held.append(item)
        else:
            self.lost += 1
        return False

    def _run(self) -> None:
        stop = False
        next_try = 0.0
        while True:
            wait = None if not self._held else next_try - time.monotonic()
            try:
                item = self._queue.get(timeout=wait) if wait is None or wait > 0 else self._queue.get_nowait()
                stop = self._take(item) or stop
            except queue.Empty:
                pass
            with contextlib.suppress(queue.Empty):
                while True:
                    stop = self._take(self._queue.get_nowait()) or stop
            due = self._held and (stop or time.monotonic() >= next_try)
            if due and not self._flush():
                next_try = time.monotonic() + self.retry_s
            if stop:
                if self.failure is not None:
                    log.error("the audit log could not be written at shutdown; %d records are lost", len(self._held))
                return

    def _flush(self) -> bool:
        """Append every held record (after the gap record of an outage); whether it worked."""
        batch = self._held
        if self.failure is not None:
            gap = {
                "time": utc_now(),
                "event": GAP,
                "cause": "write_failed",
                "failed_since": self.failed_since,
                "error": self.failure,
                "late": len(self._held),
                "dropped": self.lost,
            }
            batch = [gap, *self._held]
        try:
            self.writer.append(batch)
        except Exception as exc:  # any failure must fail closed, never end the thread
            self.write_errors += 1
            if self.failure is None:
                self.failed_since = utc_now()
                log.error("cannot write the audit log (%s); model calls are refused until it can be written", _why(exc))
            self.failure = _why(exc)
            return False
        if self.failure is not None:
            log.warning(
                "the audit log is written again (failing since %s: %s; %d records late, %d lost)",
                self.failed_since,
                self.failure,
                len(self._held),
                self.lost,
            )
        self._held = []
        self.failure, self.failed_since, self.lost = None, None, 0
        return True


def _why(exc: Exception) -> str:
    """A short reason: the OS's message for OSError (`No space left on device`), else the text."""
    if isinstance(exc, OSError) and exc.strerror:
        return exc.strerror
    return f"{type(exc).__name__}: {exc}"


class AuditCollector(Collector):
    """The audit log's state for /metrics, read at scrape time from `current()` (None when off)."""

    def __init__(self, current: Callable[[], AuditLog | None]) -> None:
        self._current = current

    def collect(self) -> Iterator[Metric]:
        """hearth_audit_failing, hearth_audit_held_records, hearth_audit_write_errors_total."""
        audit = self._current()
        failing = GaugeMetricFamily(
            "hearth_audit_failing", "1 while the audit log cannot be written (requests are refused)"
        )
        failing.add_metric([], 1 if audit is not None and audit.failure is not None else 0)
        held = GaugeMetricFamily("hearth_audit_held_records", "Audit records waiting to be written")
        held.add_metric([], audit.held if audit is not None else 0)
        errors = CounterMetricFamily("hearth_audit_write_errors", "Failed attempts to write the audit log")
        errors.add_metric([], audit.write_errors if audit is not None else 0)
        yield from (failing, held, errors)
