"""Work whose cost follows client input — checking a definition, rendering a template, extracting a
document's text — runs in job processes with a time and a memory budget, never on the event loop.

A job process (`python -m server.workflows.job_worker`) caps its own address space at start-up;
the pool hands it one job at a time over its stdin/stdout (length-prefixed pickles) and kills it
when the job outlives `workflow_job_timeout_s`, so a runaway YAML parse or template loop costs one
process, not the server (`/health` keeps answering while it runs). A killed or dead process is
replaced on the next job. The job's own refusals come back as exceptions of the caller's kind.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import pickle
import struct
import sys
from typing import Any

from server.settings import WorkflowSettings
from server.workflows.gateway import StepFailed
from server.workflows.limits import LimitError
from server.workflows.loader import Problem, WorkflowError

log = logging.getLogger(__name__)

_HEADER = struct.Struct("!Q")
# What a job process writes once its imports are done; the time budget starts after it.
READY = b"R"
_START_TIMEOUT_S = 120.0


class JobFailed(Exception):
    """A job that ran out of its budget or whose process died; the message says which."""

    def __init__(self, message: str, *, setting: str | None = None) -> None:
        super().__init__(message)
        self.setting = setting


def raise_outcome(outcome: tuple[Any, ...]) -> Any:
    """The value of a job's tagged outcome, or its error raised as the caller's exception."""
    match outcome:
        case ("ok", value):
            return value
        case ("problems", problems):
            raise WorkflowError([Problem(*p) for p in problems])
        case ("limit", what, setting, limit, status):
            raise LimitError(what, setting=setting, limit=limit, status=status)
        case ("step", message):
            raise StepFailed(message)
        case ("memory", message):
            raise JobFailed(message, setting="workflow_job_memory_mb")
        case (_, message):
            raise JobFailed(str(message))
    raise JobFailed(f"malformed job outcome {outcome[:1]!r}")


class _Process:
    """One job process and its pipes."""

    def __init__(self, process: asyncio.subprocess.Process) -> None:
        self.process = process
        self.ready = False

    @property
    def alive(self) -> bool:
        return self.process.returncode is None

    async def wait_ready(self) -> None:
        """Wait until the process has imported what it needs (once)."""
        assert self.process.stdout is not None
        if not self.ready:
            if await self.process.stdout.readexactly(len(READY)) != READY:
                raise JobFailed("the job process did not start")
            self.ready = True

    async def ask(self, job: str, args: tuple[Any, ...], max_bytes: int) -> tuple[Any, ...]:
        assert self.process.stdin is not None and self.process.stdout is not None
        payload = pickle.dumps((job, args), protocol=pickle.HIGHEST_PROTOCOL)
        self.process.stdin.write(_HEADER.pack(len(payload)) + payload)
        await self.process.stdin.drain()
        (size,) = _HEADER.unpack(await self.process.stdout.readexactly(_HEADER.size))
        if size > max_bytes:
            raise JobFailed(f"the job's result is larger than {max_bytes} bytes")
        outcome: tuple[Any, ...] = pickle.loads(await self.process.stdout.readexactly(size))
        return outcome

    async def kill(self) -> None:
        with contextlib.suppress(ProcessLookupError):
            self.process.kill()
        with contextlib.suppress(Exception):
            await self.process.wait()


class JobPool:
    """`workflow_job_workers` job processes, each running one job at a time under the budget."""

    def __init__(self, settings: WorkflowSettings) -> None:
        self.settings = settings
        self._idle: asyncio.Queue[_Process | None] = asyncio.Queue()
        for _ in range(settings.workflow_job_workers):
            self._idle.put_nowait(None)
        self._all: set[_Process] = set()
        # A job's pickled result: what its limits allow it to build, with room for the wrapping.
        self.max_result_bytes = 8 * max(
            settings.workflow_max_bytes, settings.workflow_template_max_chars, settings.workflow_extract_max_chars
        ) + (1 << 20)

    async def start(self) -> None:
        """Start the job processes now (their imports take a second or two), so the first
        definition or template does not wait for them."""
        spawned = [await self._spawn() for _ in range(self._idle.qsize())]
        while not self._idle.empty():
            self._idle.get_nowait()
        for child in spawned:
            self._idle.put_nowait(child)

    async def _spawn(self) -> _Process:
        process = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "server.workflows.job_worker",
            str(self.settings.workflow_job_memory_mb),
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
        )
        child = _Process(process)
        self._all.add(child)
        return child

    async def run(self, job: str, *args: Any) -> Any:
        """Run `job` (a name in server/workflows/job_worker.py's table) with `args` in a job
        process; its value, or its refusal raised (`WorkflowError`, `LimitError`, `StepFailed`),
        or `JobFailed` when it ran out of time or memory."""
        child = await self._idle.get()
        try:
            if child is None or not child.alive:
                child = await self._spawn()
            try:
                await asyncio.wait_for(child.wait_ready(), _START_TIMEOUT_S)
            except (TimeoutError, asyncio.IncompleteReadError, JobFailed):
                await self._discard(child)
                child = None
                raise JobFailed("the job process did not start") from None
            timeout = self.settings.workflow_job_timeout_s
            try:
                outcome = await asyncio.wait_for(child.ask(job, args, self.max_result_bytes), timeout)
            except TimeoutError:
                await self._discard(child)
                child = None
                raise JobFailed(
                    f"it took longer than {timeout:g} s (setting `workflow_job_timeout_s`)",
                    setting="workflow_job_timeout_s",
                ) from None
            except (asyncio.IncompleteReadError, ConnectionError, JobFailed) as exc:
                await self._discard(child)
                child = None
                if isinstance(exc, JobFailed):
                    raise
                raise JobFailed(
                    "its process died (out of memory? setting `workflow_job_memory_mb`)",
                    setting="workflow_job_memory_mb",
                ) from None
            except asyncio.CancelledError:
                # The job is abandoned mid-answer: its pipe is out of step, so the process goes.
                await self._discard(child)
                child = None
                raise
            return raise_outcome(outcome)
        finally:
            self._idle.put_nowait(child)

    async def _discard(self, child: _Process) -> None:
        self._all.discard(child)
        await child.kill()

    async def close(self) -> None:
        """Stop every job process."""
        for child in list(self._all):
            await self._discard(child)
