"""Hub operations (pull, convert, import of an upload or a path) as background jobs with progress.

A job runs in a worker thread (downloads wait on the network, conversions on a subprocess), never
on the server's event loop. Its progress is a list of numbered events that a client can poll or
stream; the job's state is a plain Struct that the API returns as it is.

Cancelling is cooperative, as a thread cannot be killed: a queued job never starts, and a running
one gets `JobCancelled` raised at its next log line or progress step (a download's next chunk, a
converter's next output line, which also kills the converter), so the operation unwinds through
its own clean-up (the store removes the partial artifact). A job whose work finished before it
noticed is rolled back by the runner: a cancelled job never leaves an artifact behind.
"""

from __future__ import annotations

import logging
import threading
import time
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Literal

import msgspec

from hub.errors import JobCancelled, error_code
from hub.manifest import Manifest

log = logging.getLogger(__name__)

JobStatus = Literal["queued", "running", "cancelling", "succeeded", "failed", "cancelled"]
EventType = Literal["log", "progress", "succeeded", "failed", "cancelled"]
FINISHED: tuple[JobStatus, ...] = ("succeeded", "failed", "cancelled")
# Keep the newest events of a long job; a client that fell further behind resumes from there.
_MAX_EVENTS = 2000


class JobEvent(msgspec.Struct, frozen=True, kw_only=True):
    """One step of a job: a log line, byte progress, or the end."""

    seq: int
    type: EventType
    time: float
    message: str | None = None
    done: int | None = None
    total: int | None = None


class Job(msgspec.Struct, kw_only=True):
    """A job's state as the API shows it."""

    id: str
    kind: str
    status: JobStatus
    created: float
    params: dict[str, Any]
    object: Literal["hub.job"] = "hub.job"
    progress: JobEvent | None = None
    result: Manifest | None = None
    error: str | None = None
    error_code: str | None = None
    finished: float | None = None


class Reporter:
    """What a running job calls to report; thread-safe."""

    def __init__(self, runner: JobRunner, job_id: str) -> None:
        self._runner = runner
        self._job_id = job_id

    def log(self, message: str) -> None:
        """A line of output (a converter's, or a step of the operation); raises JobCancelled once
        the job is cancelled."""
        self.check()
        self._runner._add(self._job_id, "log", message=message)

    def transfer(self, what: str, done: int, total: int | None) -> None:
        """Bytes of a download or copy so far; raises JobCancelled once the job is cancelled."""
        self.check()
        self._runner._add(self._job_id, "progress", message=what, done=done, total=total)

    def check(self) -> None:
        """Raise JobCancelled if the job was cancelled."""
        if self._runner.cancel_requested(self._job_id):
            raise JobCancelled("cancelled")


class JobFinished(Exception):
    """The job has already ended (succeeded, failed or was cancelled): it cannot be cancelled."""


class JobRunner:
    """Runs hub jobs one at a time in a worker thread and keeps their state and events."""

    def __init__(
        self,
        classify: Callable[[BaseException], str | None] = error_code,
        rollback: Callable[[Manifest], None] | None = None,
    ) -> None:
        # One at a time: two conversions at once would fight over the CPU and the disk.
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="hearth-hub-job")
        self._lock = threading.Lock()
        self._jobs: dict[str, Job] = {}
        self._events: dict[str, list[JobEvent]] = {}
        self._seq: dict[str, int] = {}
        self._classify = classify
        # Removes what a job installed when a cancel arrived after its work was done.
        self._rollback = rollback

    def submit(self, kind: str, params: dict[str, object], work: Callable[[Reporter], Manifest]) -> Job:
        """Queue `work`; returns the job's state right away."""
        job = Job(id=f"hubjob-{uuid.uuid4().hex[:16]}", kind=kind, status="queued", created=time.time(), params=params)
        with self._lock:
            self._jobs[job.id] = job
            self._events[job.id] = []
            self._seq[job.id] = 0
        self._pool.submit(self._run, job.id, work)
        return self.get(job.id)

    def _run(self, job_id: str, work: Callable[[Reporter], Manifest]) -> None:
        with self._lock:
            job = self._jobs[job_id]
            if job.status != "queued":  # cancelled while it waited
                return
            job.status = "running"
        try:
            manifest = work(Reporter(self, job_id))
        except BaseException as exc:
            if self.cancel_requested(job_id):
                self._cancelled(job_id)
                return
            log.warning("hub job %s failed: %s", job_id, exc)
            with self._lock:
                job = self._jobs[job_id]
                job.error = str(exc) or type(exc).__name__
                job.error_code = self._classify(exc)
            self._add(job_id, "failed", message=job.error, final="failed")
            return
        if self.cancel_requested(job_id):
            # The cancel came after the last report: undo the install rather than ignore the cancel.
            if self._rollback is not None:
                try:
                    self._rollback(manifest)
                except Exception as exc:
                    log.warning("hub job %s: removing %s after its cancel failed: %s", job_id, manifest.name, exc)
            self._cancelled(job_id)
            return
        with self._lock:
            self._jobs[job_id].result = manifest
        self._add(job_id, "succeeded", message=f"installed {manifest.name}", final="succeeded")

    def _cancelled(self, job_id: str) -> None:
        log.info("hub job %s cancelled", job_id)
        with self._lock:
            job = self._jobs[job_id]
            job.error = "the job was cancelled"
            job.error_code = "cancelled"
        self._add(job_id, "cancelled", message=job.error, final="cancelled")

    def cancel(self, job_id: str) -> Job:
        """Ask job `job_id` to stop: a queued job is cancelled at once, a running one becomes
        `cancelling` until it notices; KeyError if there is no such job, JobFinished if it ended."""
        with self._lock:
            job = self._jobs[job_id]
            if job.status in FINISHED:
                raise JobFinished(f"job {job_id} has already ended ({job.status})")
            queued = job.status == "queued"
            # A queued job that is `cancelling` is never started by `_run`.
            job.status = "cancelling"
        if queued:
            self._cancelled(job_id)
        return self.get(job_id)

    def cancel_requested(self, job_id: str) -> bool:
        """Whether the job was asked to stop (it is `cancelling` or `cancelled`)."""
        with self._lock:
            return self._jobs[job_id].status in ("cancelling", "cancelled")

    def _add(
        self,
        job_id: str,
        type: EventType,
        *,
        message: str | None = None,
        done: int | None = None,
        total: int | None = None,
        final: JobStatus | None = None,
    ) -> None:
        with self._lock:
            self._seq[job_id] += 1
            event = JobEvent(
                seq=self._seq[job_id], type=type, time=time.time(), message=message, done=done, total=total
            )
            events = self._events[job_id]
            events.append(event)
            del events[:-_MAX_EVENTS]
            job = self._jobs[job_id]
            if type == "progress":
                job.progress = event
            if final is not None:
                job.status = final
                job.finished = event.time

    def get(self, job_id: str) -> Job:
        """A copy of the job's state; KeyError if there is no such job."""
        with self._lock:
            return msgspec.structs.replace(self._jobs[job_id])

    def jobs(self) -> list[Job]:
        """Every job, oldest first."""
        with self._lock:
            return [msgspec.structs.replace(job) for job in self._jobs.values()]

    def events_after(self, job_id: str, seq: int) -> tuple[list[JobEvent], bool]:
        """The job's events numbered above `seq`, and whether the job has finished."""
        with self._lock:
            events = [e for e in self._events[job_id] if e.seq > seq]
            return events, self._jobs[job_id].status in FINISHED

    def close(self) -> None:
        """Stop taking jobs; queued ones are dropped, a running one finishes in its thread."""
        self._pool.shutdown(wait=False, cancel_futures=True)
